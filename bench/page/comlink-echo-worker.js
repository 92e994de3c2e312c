// The same trivial worker behind comlink, the RPC layer Outpost's calls go through.
import * as Comlink from 'comlink';

Comlink.expose({ echo: (message) => (typeof message === 'number' ? message : 0) });
