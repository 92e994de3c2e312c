// The trivial module worker the bench pings: the floor for any worker call on this machine.
self.onmessage = (event) => self.postMessage(typeof event.data === 'number' ? event.data : 0);
