import { expect, type BrowserContext, type CDPSession, type Page } from '@playwright/test';
import { STRICT_CSP } from '../../examples/shared/csp.js';

/** What a page and its workers had refused under its Content-Security-Policy. */
export interface CspWatch {
  /** Each violation as `<where>: <what>`, in the order seen; one may be reported by several channels. */
  readonly violations: string[];
  /** Fails the test, listing them, if anything was refused. */
  expectNone(): void;
}

// The page's `securitypolicyviolation` events reach the spec through this binding.
const BINDING = '__outpostCspViolation';
// How Chromium words a refusal on the console: "Refused to load the script '…' because it
// violates the following Content Security Policy directive…", "Executing inline script violates
// the following Content Security Policy directive…". ("Refused to get unsafe header" is not one.)
const CSP_MESSAGE = /Content Security Policy/i;

/**
 * Watches `page` from its next navigation on for everything its Content-Security-Policy refuses,
 * in the page and in its workers, through every channel Chromium has, because none sees it all:
 *  - the page's `securitypolicyviolation` events (from an init script, so from the first byte);
 *  - console messages that say so ("Refused to…", "…violates the following Content Security
 *    Policy directive…"), from the page and from its workers' console calls;
 *  - DevTools, attached to the page and to every worker it starts (ONNX Runtime's threads are
 *    workers of the Outpost worker): the Audits domain's CSP issues, the only channel that
 *    reports an eval refused inside a worker, and the Log domain's security entries, which
 *    Playwright does not pass on for workers. The page's service worker is attached too when
 *    Chromium offers it to the page's session (it does for the one controlling the page).
 * It also counts as a violation a page or script served without the README's strict policy.
 * Call it before the page's first `goto`, and before the context is first set offline (its
 * DevTools session then follows `context.setOffline`: see followOffline).
 */
export async function watchCsp(
  page: Page,
  /** The policies a document may carry besides the strict one (`outpost serve`'s dashboard sends a stricter one of its own). */
  alsoAllowed: readonly string[] = [],
): Promise<CspWatch> {
  const violations: string[] = [];
  const add = (where: string, what: string) => violations.push(`${where}: ${what}`);

  await page.exposeBinding(BINDING, (_source, what: string) => add('page event', what));
  await page.addInitScript((binding) => {
    const report = (what: string) => (window as unknown as Record<string, (what: string) => void>)[binding]?.(what);
    addEventListener(
      'securitypolicyviolation',
      (e) => report(`${e.effectiveDirective} ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`),
      true,
    );
  }, BINDING);
  // A document or a script (a worker's policy is its script's) served without the policy, from
  // the network or from a service worker's cache, would run outside it.
  page.on('response', (r) => {
    const type = r.request().resourceType();
    if (
      (type === 'document' || type === 'script') &&
      r.status() === 200 &&
      r.headers()['content-security-policy'] !== STRICT_CSP &&
      !(type === 'document' && alsoAllowed.includes(r.headers()['content-security-policy'] ?? ''))
    )
      add('response', `${r.url()} served without the strict policy`);
  });
  page.on('console', (m) => {
    if (CSP_MESSAGE.test(m.text())) add(`console ${m.worker()?.url() ?? 'page'}`, m.text());
  });

  const cdp = await page.context().newCDPSession(page);
  followOffline(page.context(), cdp);
  const target = new Target(cdp, [], 'page', add);
  await target.enable();
  return {
    violations,
    expectNone: () => expect(violations, 'Content-Security-Policy violations').toEqual([]),
  };
}

// Chromium keeps a context's offline emulation across a navigation only while no other DevTools
// session is on the page: with the watch's there, a page reloaded offline comes back with
// navigator.onLine true (the offline PWA's spec saw it). So each watch's session is set offline
// and online with its context.
const followers = new WeakMap<BrowserContext, Set<CDPSession>>();

function followOffline(context: BrowserContext, cdp: CDPSession): void {
  let sessions = followers.get(context);
  if (!sessions) {
    const all = (sessions = new Set());
    followers.set(context, all);
    const setOffline = context.setOffline.bind(context);
    context.setOffline = async (offline: boolean) => {
      await setOffline(offline);
      // The call Playwright makes on its own sessions; a closed page's session just fails.
      const conditions = { offline, latency: 0, downloadThroughput: -1, uploadThroughput: -1 };
      await Promise.all([...all].map((s) => s.send('Network.emulateNetworkConditions', conditions).catch(() => {})));
    };
  }
  sessions.add(cdp);
}

/** A page's or `page.request`'s response. */
interface AnyResponse {
  url(): string;
  headers(): Record<string, string>;
}

/** Asserts that a response (a page, a worker script) was served with the README's strict policy, or with `policy`. */
export function expectStrictCsp(response: AnyResponse | null, policy = STRICT_CSP): void {
  expect(response, 'a response').not.toBeNull();
  expect(response!.headers()['content-security-policy'], response!.url()).toBe(policy);
}

interface CspIssue {
  code: string;
  details: {
    contentSecurityPolicyIssueDetails?: {
      blockedURL?: string;
      violatedDirective: string;
      contentSecurityPolicyViolationType: string;
      sourceCodeLocation?: { url: string; lineNumber: number };
    };
  };
}
interface LogEntry {
  source: string;
  level: string;
  text: string;
  url?: string;
}
interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
}

/**
 * One DevTools target, the page or a worker under it, reached through the page's session:
 * workers are attached with `flatten: false`, so each one's protocol travels inside
 * `Target.sendMessageToTarget` / `receivedMessageFromTarget` of its parent (Playwright's
 * CDPSession speaks to one session only). Each target auto-attaches its own workers, paused until
 * the watch is set up, so nothing a worker does at start escapes it.
 */
class Target {
  private nextId = 1;
  private readonly children = new Map<string, Target>();

  constructor(
    private readonly cdp: CDPSession,
    /** Session ids from the page's session down to this target; empty for the page itself. */
    private readonly path: string[],
    private readonly name: string,
    private readonly add: (where: string, what: string) => void,
  ) {
    if (path.length === 0) {
      cdp.on('Audits.issueAdded', (e) => this.issue(e.issue as CspIssue));
      cdp.on('Log.entryAdded', (e) => this.log(e.entry as LogEntry));
      cdp.on('Target.attachedToTarget', (e) => this.attached(e.sessionId, e.targetInfo));
      cdp.on('Target.receivedMessageFromTarget', (e) => this.children.get(e.sessionId)?.receive(e.message));
    }
  }

  /** Starts the watch on this target and resumes it if it waits for the debugger. */
  async enable(): Promise<void> {
    try {
      await Promise.all([
        this.send('Audits.enable'),
        this.send('Log.enable'),
        this.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: true, flatten: false }),
      ]);
    } finally {
      if (this.path.length > 0) await this.send('Runtime.runIfWaitingForDebugger').catch(() => undefined);
    }
  }

  /** Sends a command to this target, wrapped once per level between it and the page. */
  private async send(method: string, params: Record<string, unknown> = {}): Promise<void> {
    if (this.path.length === 0) {
      await this.cdp.send(method as 'Log.enable', params);
      return;
    }
    let message = JSON.stringify({ id: this.nextId++, method, params });
    for (let i = this.path.length - 1; i > 0; i--)
      message = JSON.stringify({
        id: this.nextId++,
        method: 'Target.sendMessageToTarget',
        params: { sessionId: this.path[i], message },
      });
    await this.cdp.send('Target.sendMessageToTarget', { sessionId: this.path[0]!, message });
  }

  /** A message from this (child) target: its events; replies to our commands are not awaited. */
  private receive(raw: string): void {
    const m = JSON.parse(raw) as CdpMessage;
    const p = m.params ?? {};
    if (m.method === 'Audits.issueAdded') this.issue(p.issue as CspIssue);
    else if (m.method === 'Log.entryAdded') this.log(p.entry as LogEntry);
    else if (m.method === 'Target.attachedToTarget')
      this.attached(p.sessionId as string, p.targetInfo as { type: string; url: string });
    else if (m.method === 'Target.receivedMessageFromTarget')
      this.children.get(p.sessionId as string)?.receive(p.message as string);
  }

  private attached(sessionId: string, info: { type: string; url: string }): void {
    const child = new Target(this.cdp, [...this.path, sessionId], `${info.type} ${info.url}`, this.add);
    this.children.set(sessionId, child);
    // A worker that cannot be watched must still run: enable() resumes it whatever happens.
    void child.enable().catch(() => undefined);
  }

  private issue(issue: CspIssue): void {
    const d = issue.details.contentSecurityPolicyIssueDetails;
    if (issue.code !== 'ContentSecurityPolicyIssue' || !d) return;
    const at = d.sourceCodeLocation ? ` at ${d.sourceCodeLocation.url}:${d.sourceCodeLocation.lineNumber}` : '';
    this.add(
      `issue ${this.name}`,
      `${d.violatedDirective} ${d.blockedURL ?? d.contentSecurityPolicyViolationType}${at}`,
    );
  }

  private log(entry: LogEntry): void {
    // The page's Log also relays its workers' entries (source "worker"): each target reports its own.
    if (entry.source === 'worker') return;
    if (CSP_MESSAGE.test(entry.text)) this.add(`log ${this.name}`, entry.text);
  }
}
