import { isIP } from "node:net";

export interface AddressVerdict {
  allowed: boolean;
  reason?: string;
}

interface Range {
  base: bigint;
  prefix: number;
  reason: string;
}

const METADATA = "cloud metadata address";

// Cloud metadata and credential endpoints: refused always, even with MCP_API_ALLOW_PRIVATE_NETWORK (issue 18).
const IPV4_METADATA: Range[] = [
  v4("169.254.169.254/32", METADATA), // AWS, GCP, Azure, OCI, OpenStack, DigitalOcean: docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
  v4("169.254.170.2/32", METADATA), // AWS ECS task credentials: docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
  v4("169.254.170.23/32", METADATA), // AWS EKS Pod Identity agent: docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html
  v4("168.63.129.16/32", METADATA), // Azure WireServer: learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16
  v4("100.100.100.200/32", METADATA), // Alibaba Cloud ECS: alibabacloud.com/help/en/ecs/user-guide/view-instance-metadata
  v4("192.0.0.192/32", METADATA), // Oracle Cloud (legacy metadata): docs.oracle.com/iaas/Content/Compute/Tasks/gettingmetadata.htm
  v4("169.254.0.23/32", METADATA), // Tencent Cloud CVM (metadata.tencentyun.com): intl.cloud.tencent.com/document/product/213/4934
];

const IPV6_METADATA: Range[] = [
  v6("fd00:ec2::254/128", METADATA), // AWS IMDS over IPv6: docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
  v6("fd00:ec2::23/128", METADATA), // AWS EKS Pod Identity agent over IPv6: docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html
  v6("fd20:ce::254/128", METADATA), // GCP metadata server on IPv6-only VMs: cloud.google.com/compute/docs/metadata/querying-metadata
  v6("fe80::a9fe:a9fe/128", METADATA), // OpenStack metadata over IPv6: opendev.org/openstack/neutron releasenotes metadata-ipv6
];

// Most specific first: the first match gives the reason.
const IPV4_REFUSED: Range[] = [
  ...IPV4_METADATA,
  v4("255.255.255.255/32", "broadcast address"),
  v4("0.0.0.0/8", "unspecified address"),
  v4("10.0.0.0/8", "private network address"),
  v4("100.64.0.0/10", "carrier-grade NAT address"),
  v4("127.0.0.0/8", "loopback address"),
  v4("169.254.0.0/16", "link-local address"),
  v4("172.16.0.0/12", "private network address"),
  v4("192.0.0.0/24", "reserved address"),
  v4("192.0.2.0/24", "documentation address"),
  v4("192.88.99.0/24", "reserved address"),
  v4("192.168.0.0/16", "private network address"),
  v4("198.18.0.0/15", "benchmarking address"),
  v4("198.51.100.0/24", "documentation address"),
  v4("203.0.113.0/24", "documentation address"),
  v4("224.0.0.0/4", "multicast address"),
  v4("240.0.0.0/4", "reserved address"),
];

const IPV6_REFUSED: Range[] = [
  v6("::/128", "unspecified address"),
  v6("::1/128", "loopback address"),
  ...IPV6_METADATA,
  v6("64:ff9b:1::/48", "reserved address"),
  v6("100::/64", "reserved address"),
  v6("2001::/32", "Teredo tunnelling address"),
  v6("2001:2::/48", "benchmarking address"),
  v6("2001:db8::/32", "documentation address"),
  v6("3fff::/20", "documentation address"),
  v6("fc00::/7", "unique-local address"),
  v6("fe80::/10", "link-local address"),
  v6("fec0::/10", "site-local address"),
  v6("ff00::/8", "multicast address"),
];

// Prefixes whose low 32 bits carry an IPv4 address that is what really gets reached.
const IPV4_MAPPED = v6("::ffff:0:0/96", "");
const IPV4_COMPATIBLE = v6("::/96", "");
const NAT64 = v6("64:ff9b::/96", "");
const SIX_TO_FOUR = v6("2002::/16", "");
const GLOBAL_UNICAST = v6("2000::/3", "");

/** Decides whether an outbound connection to `ip` (IPv4 or IPv6) is acceptable. */
export function classifyAddress(ip: string): AddressVerdict {
  const address = stripBrackets(ip).replace(/%.*$/, "");
  switch (isIP(address)) {
    case 4:
      return classifyV4(ipv4ToBigInt(address));
    case 6:
      return classifyV6(ipv6ToBigInt(address));
    default:
      return { allowed: false, reason: "not an IP address" };
  }
}

/**
 * The verdict when MCP_API_ALLOW_PRIVATE_NETWORK lifts the private-range guard: only cloud
 * metadata addresses stay refused, in every spelling classifyAddress recognises.
 */
export function classifyMetadataOnly(ip: string): AddressVerdict {
  const verdict = classifyAddress(ip);
  return verdict.reason === METADATA ? verdict : { allowed: true };
}

function classifyV4(value: bigint): AddressVerdict {
  const range = IPV4_REFUSED.find((r) => inRange(value, r, 32));
  return range ? { allowed: false, reason: range.reason } : { allowed: true };
}

function classifyV6(value: bigint): AddressVerdict {
  const low32 = value & 0xffffffffn;
  if (inRange(value, IPV4_MAPPED, 128) || inRange(value, NAT64, 128)) return classifyV4(low32);
  // ::/96 also holds :: and ::1, which must keep their own meaning.
  if (inRange(value, IPV4_COMPATIBLE, 128) && value > 1n) return classifyV4(low32);
  if (inRange(value, SIX_TO_FOUR, 128)) {
    const embedded = classifyV4((value >> 80n) & 0xffffffffn);
    if (!embedded.allowed) return embedded;
  }
  const range = IPV6_REFUSED.find((r) => inRange(value, r, 128));
  if (range) return { allowed: false, reason: range.reason };
  // Outside 2000::/3 everything is unassigned or special-purpose.
  if (!inRange(value, GLOBAL_UNICAST, 128)) return { allowed: false, reason: "reserved address" };
  return { allowed: true };
}

/**
 * Recognises a URL host that is an IP literal, including the legacy IPv4 spellings
 * (decimal, octal, hex, fewer than four parts) that resolvers still accept, and returns it
 * normalised: dotted-quad for IPv4, the bare address for IPv6. Returns null for a DNS name.
 */
export function parseHostLiteral(host: string): string | null {
  if (host.startsWith("[") && host.endsWith("]")) {
    const inner = host.slice(1, -1);
    return isIP(inner.replace(/%.*$/, "")) === 6 ? inner.toLowerCase() : null;
  }
  if (isIP(host.replace(/%.*$/, "")) === 6) return host.toLowerCase();
  return parseLegacyIpv4(host);
}

// The WHATWG URL IPv4 parser, which follows inet_aton: up to four parts, each decimal,
// 0-prefixed octal or 0x-prefixed hex; the last part fills the remaining bytes.
function parseLegacyIpv4(host: string): string | null {
  const parts = host.split(".");
  if (parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
  if (parts.length === 0 || parts.length > 4) return null;

  const numbers: number[] = [];
  for (const part of parts) {
    const n = parseIpv4Part(part);
    if (n === null) return null;
    numbers.push(n);
  }
  const last = numbers.pop()!;
  if (numbers.some((n) => n > 255)) return null;
  if (last >= 256 ** (4 - numbers.length)) return null;

  let value = last;
  numbers.forEach((n, i) => {
    value += n * 256 ** (3 - i);
  });
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

function parseIpv4Part(part: string): number | null {
  if (/^0x[0-9a-f]*$/i.test(part)) return part.length === 2 ? 0 : parseInt(part.slice(2), 16);
  if (/^0[0-7]+$/.test(part)) return parseInt(part.slice(1), 8);
  if (/^(0|[1-9][0-9]*)$/.test(part)) return Number(part);
  return null;
}

function stripBrackets(ip: string): string {
  return ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
}

function inRange(value: bigint, range: Range, bits: number): boolean {
  const shift = BigInt(bits - range.prefix);
  return value >> shift === range.base >> shift;
}

function v4(cidr: string, reason: string): Range {
  const [address, prefix] = cidr.split("/");
  return { base: ipv4ToBigInt(address), prefix: Number(prefix), reason };
}

function v6(cidr: string, reason: string): Range {
  const [address, prefix] = cidr.split("/");
  return { base: ipv6ToBigInt(address), prefix: Number(prefix), reason };
}

function ipv4ToBigInt(address: string): bigint {
  return address.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

// Expects an address that isIP() already accepted as IPv6.
function ipv6ToBigInt(address: string): bigint {
  let text = address.toLowerCase();
  const dotted = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (dotted) {
    const v4value = ipv4ToBigInt(dotted[1]);
    const hex = `${(v4value >> 16n).toString(16)}:${(v4value & 0xffffn).toString(16)}`;
    text = text.slice(0, -dotted[1].length) + hex;
  }
  const [head, tail] = text.split("::");
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail === undefined ? [] : tail ? tail.split(":") : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(text.includes("::") ? missing : 0).fill("0"), ...tailGroups];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}
