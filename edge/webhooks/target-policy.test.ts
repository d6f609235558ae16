import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkWebhookTarget, PRODUCTION_TARGET_POLICY, targetPolicyFromEnv } from './target-policy.ts';

const DEV = { allowHttpLoopback: true };

const refused = (url: string, policy = PRODUCTION_TARGET_POLICY) => {
  const result = checkWebhookTarget(url, policy);
  return !result.ok;
};

describe('webhook target policy: accepted URLs', () => {
  it.each([
    'https://hooks.example.com/webhooks',
    'https://hooks.example.com:443/a?b=c',
    'https://hooks.example.com:8443/a',
    'https://HOOKS.Example.COM/path', // normalized to lower case
    'https://hooks.example.com./trailing-dot',
    'https://xn--bcher-kva.de/hook', // IDN
    'https://8.8.8.8/hook',
    'https://[2606:4700:4700::1111]/hook',
  ])('%s', (url) => {
    expect(checkWebhookTarget(url, PRODUCTION_TARGET_POLICY)).toMatchObject({ ok: true });
  });

  it('dev setting: http to loopback only', () => {
    for (const url of ['http://127.0.0.1:9999/h', 'http://localhost:8080/h', 'http://[::1]:8080/h', 'http://127.1.2.3/']) {
      expect(checkWebhookTarget(url, DEV)).toMatchObject({ ok: true });
      expect(refused(url)).toBe(true);
    }
    expect(refused('http://hooks.example.com/h', DEV)).toBe(true);
    expect(refused('http://10.0.0.1/h', DEV)).toBe(true);
  });

  it('the dev setting is read from the environment only when exactly "true"', () => {
    expect(targetPolicyFromEnv({ WEBHOOK_ALLOW_HTTP_LOOPBACK: 'true' })).toEqual({ allowHttpLoopback: true });
    for (const value of [undefined, '', 'TRUE', '1', 'yes', 'false']) {
      expect(targetPolicyFromEnv({ WEBHOOK_ALLOW_HTTP_LOOPBACK: value })).toEqual({ allowHttpLoopback: false });
    }
  });

  it('returns the normalized URL to fetch, so what is checked is what is fetched', () => {
    const result = checkWebhookTarget('https://Hooks.Example.com:443/a/../b', PRODUCTION_TARGET_POLICY);
    expect(result.ok && result.url.href).toBe('https://hooks.example.com/b');
  });
});

describe('webhook target policy: SSRF attempts are refused', () => {
  it.each([
    // scheme
    ['http://hooks.example.com/', /only https/],
    ['ftp://hooks.example.com/', /only https/],
    ['file:///etc/passwd', /only https|no host/],
    ['gopher://hooks.example.com:70/', /only https/],
    ['javascript:alert(1)', /only https|no host/],
    ['data:text/plain,hi', /only https|no host/],
    ['//hooks.example.com/', /absolute/],
    ['hooks.example.com', /absolute/],
    // credentials and parser tricks
    ['https://user:pass@hooks.example.com/', /credentials/],
    ['https://user@hooks.example.com/', /credentials/],
    ['https://hooks.example.com@127.0.0.1/', /credentials/],
    ['https://127.0.0.1#@hooks.example.com/', /not public/],
    ['https://hooks.example.com\\@127.0.0.1/', /backslash/],
    ['https://hooks.example.com\t.evil/', /whitespace/],
    ['https://hooks.example.com\n/', /whitespace/],
    [' https://hooks.example.com/', /whitespace/],
    ['https://hooks.example.com\u0000/', /control/],
    ['https://' + 'a'.repeat(2100) + '.com/', /longer/],
    // loopback in every spelling
    ['https://127.0.0.1/', /loopback/],
    ['https://127.255.255.254/', /loopback/],
    ['https://2130706433/', /loopback/], // decimal
    ['https://0x7f000001/', /loopback/], // hex
    ['https://0x7f.0.0.1/', /loopback/], // hex octet
    ['https://0177.0.0.1/', /loopback/], // octal
    ['https://017700000001/', /loopback/], // octal integer
    ['https://127.1/', /loopback/], // short form
    ['https://127.0.1/', /loopback/],
    ['https://%31%32%37.0.0.1/', /loopback/], // percent-encoded
    ['https://１２７.0.0.1/', /loopback/], // full-width digits
    ['https://[::1]/', /loopback/],
    ['https://[0:0:0:0:0:0:0:1]/', /loopback/],
    ['https://localhost/', /not a fully qualified|non-public/],
    ['https://localhost./', /not a fully qualified|non-public/],
    ['https://api.localhost/', /non-public/],
    ['https://LOCALHOST/', /not a fully qualified|non-public/],
    ['https://0.0.0.0/', /unspecified/],
    ['https://0/', /unspecified/],
    ['https://[::]/', /unspecified/],
    // private, link-local, CGNAT, reserved
    ['https://10.0.0.1/', /private/],
    ['https://10.255.255.255/', /private/],
    ['https://172.16.0.1/', /private/],
    ['https://172.31.255.255/', /private/],
    ['https://192.168.1.1/', /private/],
    ['https://3232235777/', /private/], // 192.168.1.1 as an integer
    ['https://0xc0a80101/', /private/],
    ['https://0300.0250.0001.0001/', /private/],
    ['https://169.254.169.254/latest/meta-data/', /linkLocal/], // AWS/GCP/Azure metadata
    ['https://169.254.170.2/v2/credentials', /linkLocal/], // ECS task metadata
    ['https://2852039166/', /linkLocal/], // 169.254.169.254 as an integer
    ['https://0xa9fea9fe/', /linkLocal/],
    ['https://0251.0376.0251.0376/', /linkLocal/],
    ['https://100.64.0.1/', /carrierGradeNat/],
    ['https://100.100.100.200/', /carrierGradeNat/], // Alibaba Cloud metadata
    ['https://192.0.0.192/', /reserved/], // Oracle Cloud metadata
    ['https://192.0.2.1/', /reserved/],
    ['https://198.18.0.1/', /reserved|benchmarking/],
    ['https://240.0.0.1/', /reserved/],
    ['https://255.255.255.255/', /broadcast/],
    ['https://224.0.0.1/', /multicast/],
    // IPv6
    ['https://[fe80::1]/', /linkLocal/],
    ['https://[fc00::1]/', /uniqueLocal/],
    ['https://[fd00:ec2::254]/', /uniqueLocal/], // AWS IPv6 metadata
    ['https://[::ffff:127.0.0.1]/', /ipv4Mapped/],
    ['https://[::ffff:169.254.169.254]/', /ipv4Mapped/],
    ['https://[::ffff:a9fe:a9fe]/', /ipv4Mapped/],
    ['https://[::ffff:10.0.0.1]/', /ipv4Mapped/],
    ['https://[64:ff9b::a9fe:a9fe]/', /rfc6052|global unicast/], // NAT64 of the metadata address
    ['https://[2002:a9fe:a9fe::]/', /6to4/],
    ['https://[2001::1]/', /teredo/],
    ['https://[2001:db8::1]/', /reserved/],
    ['https://[ff02::1]/', /multicast/],
    ['https://[::127.0.0.1]/', /not public|global unicast/], // IPv4-compatible (deprecated)
    ['https://[fe80::1%25eth0]/', /malformed|absolute/],
    // metadata and internal names
    ['https://metadata.google.internal/computeMetadata/v1/', /non-public/],
    ['https://metadata.google.internal./computeMetadata/v1/', /non-public/],
    ['https://metadata.goog/', /non-public/],
    ['https://metadata/', /not a fully qualified/],
    ['https://instance-data/', /not a fully qualified/],
    ['https://instance-data.ec2.internal/', /non-public/],
    ['https://kubernetes.default.svc/', /non-public/],
    ['https://db.cluster.local/', /non-public/],
    ['https://router.home.arpa/', /non-public/],
    ['https://1.0.0.127.in-addr.arpa/', /non-public/],
    ['https://intranet/', /not a fully qualified/],
    // names that resolve to the address written in them
    ['https://127.0.0.1.nip.io/', /non-public/],
    ['https://10-0-0-1.sslip.io/', /non-public/],
    ['https://app.localtest.me/', /non-public/],
    ['https://lvh.me/', /non-public/],
    // ports
    ['https://hooks.example.com:22/', /port/],
    ['https://hooks.example.com:25/', /port/],
    ['https://hooks.example.com:6379/', /port/],
    ['https://hooks.example.com:80/', /port/],
    ['https://hooks.example.com:0/', /port/],
    ['https://hooks.example.com:65535/', /port/],
    ['https://hooks.example.com:99999/', /absolute/],
  ])('%s', (url, reason) => {
    const result = checkWebhookTarget(url, PRODUCTION_TARGET_POLICY);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('the dev setting never opens private, link-local or metadata addresses, over http or https', () => {
    for (const host of ['10.0.0.1', '169.254.169.254', '192.168.0.1', '[fd00::1]', 'metadata.google.internal', '100.64.0.1']) {
      expect(refused(`http://${host}/`, DEV)).toBe(true);
      expect(refused(`https://${host}/`, DEV)).toBe(true);
    }
  });
});

// Blocks written out here from the RFCs, independently of the implementation's range tables.
const FORBIDDEN_IPV4_BLOCKS: ReadonlyArray<[number, number, number, number, number]> = [
  [0, 0, 0, 0, 8],
  [10, 0, 0, 0, 8],
  [100, 64, 0, 0, 10],
  [127, 0, 0, 0, 8],
  [169, 254, 0, 0, 16],
  [172, 16, 0, 0, 12],
  [192, 168, 0, 0, 16],
  [224, 0, 0, 0, 4],
  [240, 0, 0, 0, 4],
];

const forbiddenIPv4 = fc
  .tuple(fc.constantFrom(...FORBIDDEN_IPV4_BLOCKS), fc.integer({ min: 0, max: 2 ** 32 - 1 }))
  .map(([[a, b, c, d, prefix], noise]) => {
    const base = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
    const hostMask = prefix === 0 ? 0xffffffff : (2 ** (32 - prefix) - 1) >>> 0;
    return (base + (noise & hostMask)) >>> 0;
  });

const octets = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const SPELLINGS: ReadonlyArray<(n: number) => string> = [
  (n) => octets(n).join('.'),
  (n) => String(n),
  (n) => `0x${n.toString(16)}`,
  (n) => `0${n.toString(8)}`,
  (n) => octets(n).map((o) => `0${o.toString(8)}`).join('.'),
  (n) => octets(n).map((o) => `0x${o.toString(16)}`).join('.'),
  (n) => `${octets(n)[0]}.${n & 0xffffff}`,
  (n) => `${octets(n)[0]}.${octets(n)[1]}.${n & 0xffff}`,
  (n) => `[::ffff:${octets(n).join('.')}]`,
  (n) => `[::ffff:${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}]`,
  (n) => `[64:ff9b::${octets(n).join('.')}]`,
  (n) => `[2002:${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}::1]`,
];

describe('webhook target policy: properties', () => {
  it('refuses every address of the forbidden IPv4 blocks in every spelling, port and path', () => {
    fc.assert(
      fc.property(
        forbiddenIPv4,
        fc.constantFrom(...SPELLINGS),
        fc.constantFrom('', ':443', ':8443'),
        fc.webPath(),
        (address, spell, port, path) => {
          expect(refused(`https://${spell(address)}${port}${path}`)).toBe(true);
          expect(refused(`http://${spell(address)}${port}${path}`)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses every unique-local and link-local IPv6 address', () => {
    const group = fc.integer({ min: 0, max: 0xffff }).map((g) => g.toString(16));
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0xfc00, max: 0xfdff }), fc.integer({ min: 0xfe80, max: 0xfebf })),
        fc.array(group, { minLength: 7, maxLength: 7 }),
        (head, rest) => {
          expect(refused(`https://[${head.toString(16)}:${rest.join(':')}]/`)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never throws and never accepts a non-https URL in production, whatever the input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.webUrl({ withQueryParameters: true, withFragments: true })), (input) => {
        const result = checkWebhookTarget(input, PRODUCTION_TARGET_POLICY);
        if (result.ok) {
          expect(result.url.protocol).toBe('https:');
          expect(result.url.username + result.url.password).toBe('');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses a punycode label that does not decode and accepts one that does', () => {
    expect(checkWebhookTarget('https://xn--0.com/hook', PRODUCTION_TARGET_POLICY)).toMatchObject({ ok: false });
    expect(checkWebhookTarget('https://xn--bcher-kva.de/hook', PRODUCTION_TARGET_POLICY)).toMatchObject({ ok: true });
  });

  it('accepts public https hosts built from ordinary labels', () => {
    // Ordinary labels leave out the reserved form with hyphens in the third and fourth places (RFC 5891, 4.2.3.1):
    // "xn--0" is a punycode label that does not decode, and the URL parser refuses it.
    const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}[a-z0-9]$/).filter((l) => l.slice(2, 4) !== '--');
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom('com', 'io', 'dev', 'de'), (labels, tld) => {
        expect(checkWebhookTarget(`https://${labels.join('.')}.${tld}/hook`, PRODUCTION_TARGET_POLICY)).toMatchObject({ ok: true });
      }),
      { numRuns: 200 },
    );
  });
});
