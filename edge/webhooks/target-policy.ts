import ipaddr from 'ipaddr.js';

/**
 * Which URLs we agree to POST a tenant's webhooks to (the SSRF guard).
 *
 * What we check ourselves, on the URL as the WHATWG parser normalizes it (the same parser `fetch` uses, so there is no
 * parser differential; decimal, octal, hex and short IPv4 spellings such as `2130706433`, `0177.0.0.1`, `0x7f.1` and
 * `127.1` all normalize to a dotted quad before we look at them):
 * - https only, on port 443 or 8443; plain http only when the explicit dev setting allows it, and then only to loopback
 *   (the local receiver of our tests and of `npm start`);
 * - no credentials in the URL, no backslashes, whitespace or control characters in the raw input;
 * - IP literals must be global unicast: private, loopback, link-local (which covers 169.254.169.254, the AWS/GCP/Azure
 *   metadata address), CGNAT (100.64/10, where Alibaba's 100.100.100.200 metadata lives), "this network", reserved,
 *   documentation and benchmarking ranges, multicast and broadcast are refused; for IPv6 only 2000::/3 is accepted and
 *   unique-local (fd00:ec2::254, the AWS IPv6 metadata address), link-local, IPv4-mapped/translated, NAT64, 6to4 and
 *   Teredo (which all embed an IPv4 address we would otherwise have to re-check) are refused;
 * - host names must be fully qualified and must not sit in a special-use or internal namespace (`localhost`, `.local`,
 *   `.internal` such as metadata.google.internal, `.home.arpa`...) nor in the public "name-is-the-address" services
 *   that resolve a name like `127.0.0.1.nip.io` to the address spelt inside it.
 *
 * Why DNS rebinding (a public name that resolves to 10.0.0.1 at fetch time) is not our check to make: a Worker cannot
 * resolve a name before fetching, and its `fetch()` leaves through Cloudflare's public egress, not from a host inside
 * our network. There is no private network attached to the Worker at all (reaching one takes an explicit Tunnel / VPC
 * binding, which global `fetch` does not use), and Cloudflare's egress does not connect to non-routable or loopback
 * addresses on our behalf, so a name that rebinds to a private address reaches nothing of ours. What we can and do
 * guard is everything decided by the URL text itself (above), redirects (never followed: `redirect: 'manual'` and a
 * 3xx counts as a failed attempt, so a public URL cannot bounce us to a private one) and time (a short timeout).
 * If this code ever runs outside Workers (a Node host inside a VPC), it needs a resolving, connect-time check too.
 */

export const WEBHOOK_URL_MAX_LENGTH = 2048;
/** 443 is https' default; 8443 is the one alternative commonly used for webhook receivers. Other ports are refused so
 *  that webhooks cannot be aimed at non-HTTP services (SMTP, Redis, SSH...) on public hosts. */
export const ALLOWED_HTTPS_PORTS: readonly string[] = ['', '443', '8443'];

/** Zones that never name a public webhook receiver (RFC 6761, RFC 8375, cloud and cluster internal names). */
const FORBIDDEN_NAME_SUFFIXES = [
  'localhost',
  'local',
  'localdomain',
  'internal',
  'intranet',
  'lan',
  'home',
  'corp',
  'home.arpa',
  'arpa',
  'test',
  'invalid',
  'example',
  'onion',
  'svc',
  // Cloud metadata names that are not under `.internal`.
  'metadata.goog',
  // Public wildcard DNS services whose names resolve to the IP address written in them.
  'nip.io',
  'sslip.io',
  'xip.io',
  'localtest.me',
  'lvh.me',
  'vcap.me',
  'lacolhost.com',
];

export interface WebhookTargetPolicy {
  /** Dev only: accept `http://` to loopback (127.0.0.0/8, ::1, localhost) so tests can run a local receiver. */
  allowHttpLoopback: boolean;
}

export const PRODUCTION_TARGET_POLICY: WebhookTargetPolicy = { allowHttpLoopback: false };

/** `WEBHOOK_ALLOW_HTTP_LOOPBACK` must be exactly "true" (dev and tests only): anything else keeps the production policy. */
export function targetPolicyFromEnv(env: { WEBHOOK_ALLOW_HTTP_LOOPBACK?: string | undefined }): WebhookTargetPolicy {
  return { allowHttpLoopback: env.WEBHOOK_ALLOW_HTTP_LOOPBACK === 'true' };
}

export type TargetCheck = { ok: true; url: URL } | { ok: false; reason: string };

const reject = (reason: string): TargetCheck => ({ ok: false, reason });

// Controls, whitespace (the WHATWG parser silently drops tab/newline) and backslash (parsers disagree on it).
const SUSPICIOUS_CHARACTERS = /[\u0000-\u0020\u007f-\u00a0\\\u2028\u2029\ufeff]/u;

export function checkWebhookTarget(raw: string, policy: WebhookTargetPolicy): TargetCheck {
  if (raw.length > WEBHOOK_URL_MAX_LENGTH) return reject(`URL is longer than ${WEBHOOK_URL_MAX_LENGTH} characters`);
  if (SUSPICIOUS_CHARACTERS.test(raw)) return reject('URL contains whitespace, control characters or backslashes');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return reject('not a valid absolute URL (the host must parse, punycode labels included)');
  }
  if (url.username !== '' || url.password !== '') return reject('credentials in the URL are not allowed');

  const host = hostOf(url);
  if (host.kind === 'invalid') return reject(host.reason);

  if (url.protocol === 'http:') {
    if (!policy.allowHttpLoopback) return reject('only https URLs are allowed');
    if (!isLoopback(host)) return reject('plain http is only allowed to loopback in development');
    return { ok: true, url };
  }
  if (url.protocol !== 'https:') return reject('only https URLs are allowed');
  if (!ALLOWED_HTTPS_PORTS.includes(url.port)) return reject(`port ${url.port} is not allowed (use 443 or 8443)`);

  if (host.kind === 'name') {
    const reason = forbiddenName(host.name);
    return reason ? reject(reason) : { ok: true, url };
  }
  const reason = forbiddenAddress(host.address);
  return reason ? reject(reason) : { ok: true, url };
}

type Host =
  | { kind: 'name'; name: string }
  | { kind: 'ip'; address: ipaddr.IPv4 | ipaddr.IPv6 }
  | { kind: 'invalid'; reason: string };

function hostOf(url: URL): Host {
  const hostname = url.hostname;
  if (hostname === '') return { kind: 'invalid', reason: 'URL has no host' };
  if (hostname.startsWith('[')) {
    const literal = hostname.slice(1, -1);
    if (!ipaddr.IPv6.isValid(literal)) return { kind: 'invalid', reason: 'malformed IPv6 address' };
    return { kind: 'ip', address: ipaddr.IPv6.parse(literal) };
  }
  // After WHATWG normalization an IPv4 host is always a canonical dotted quad; anything else numeric is a name.
  if (ipaddr.IPv4.isValidFourPartDecimal(hostname)) return { kind: 'ip', address: ipaddr.IPv4.parse(hostname) };
  // A trailing dot makes the same name absolute; compare without it.
  const name = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  if (name === '' || name.includes('..')) return { kind: 'invalid', reason: 'malformed host name' };
  return { kind: 'name', name };
}

function isLoopback(host: Host): boolean {
  if (host.kind === 'name') return host.name === 'localhost';
  if (host.kind === 'ip') return host.address.range() === 'loopback';
  return false;
}

function forbiddenName(name: string): string | null {
  if (!name.includes('.')) return `host "${name}" is not a fully qualified public name`;
  for (const suffix of FORBIDDEN_NAME_SUFFIXES) {
    if (name === suffix || name.endsWith(`.${suffix}`)) return `host "${name}" is in a non-public or internal namespace`;
  }
  // The last label of a public name is a TLD, never all digits (that would be an IPv4 spelling WHATWG refused).
  const tld = name.slice(name.lastIndexOf('.') + 1);
  if (/^\d+$/.test(tld) || tld.startsWith('0x')) return `host "${name}" looks like an IP address spelling`;
  return null;
}

const IPV6_GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');

function forbiddenAddress(address: ipaddr.IPv4 | ipaddr.IPv6): string | null {
  const range = address.range();
  if (address.kind() === 'ipv4') {
    return range === 'unicast' ? null : `address ${address.toString()} is not public (${range})`;
  }
  if (range !== 'unicast') return `address ${address.toString()} is not public (${range})`;
  if (!address.match(IPV6_GLOBAL_UNICAST)) return `address ${address.toString()} is not a global unicast IPv6 address`;
  return null;
}
