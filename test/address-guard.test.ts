// Pure classification: every address here is only looked at, never contacted.
import { describe, expect, test } from "vitest";
import { classifyAddress, classifyMetadataOnly, parseHostLiteral } from "../server/outbound/address-guard.js";

describe("classifyAddress", () => {
  test.each([
    // IPv4
    ["127.0.0.1", "loopback address"],
    ["127.255.255.254", "loopback address"],
    ["10.0.0.1", "private network address"],
    ["172.16.0.1", "private network address"],
    ["172.31.255.255", "private network address"],
    ["192.168.1.1", "private network address"],
    ["169.254.1.1", "link-local address"],
    ["169.254.169.254", "cloud metadata address"],
    ["100.100.100.200", "cloud metadata address"],
    ["100.64.0.1", "carrier-grade NAT address"],
    ["100.127.255.255", "carrier-grade NAT address"],
    ["224.0.0.1", "multicast address"],
    ["239.255.255.250", "multicast address"],
    ["0.0.0.0", "unspecified address"],
    ["0.1.2.3", "unspecified address"],
    ["255.255.255.255", "broadcast address"],
    ["240.0.0.1", "reserved address"],
    ["192.0.0.8", "reserved address"],
    ["198.18.0.1", "benchmarking address"],
    ["198.19.255.255", "benchmarking address"],
    ["192.0.2.1", "documentation address"],
    ["198.51.100.1", "documentation address"],
    ["203.0.113.1", "documentation address"],
    // IPv6
    ["::1", "loopback address"],
    ["::", "unspecified address"],
    ["fe80::1", "link-local address"],
    ["fe80::1%eth0", "link-local address"],
    ["febf::1", "link-local address"],
    ["fc00::1", "unique-local address"],
    ["fd12:3456::1", "unique-local address"],
    ["fd00:ec2::254", "cloud metadata address"],
    ["ff02::1", "multicast address"],
    ["fec0::1", "site-local address"],
    ["2001:db8::1", "documentation address"],
    ["2001::1", "Teredo tunnelling address"],
    ["100::1", "reserved address"],
    ["1::1", "reserved address"],
    // IPv6 with an embedded IPv4 address
    ["::ffff:127.0.0.1", "loopback address"],
    ["::ffff:7f00:1", "loopback address"],
    ["::FFFF:7F00:0001", "loopback address"],
    ["::ffff:10.1.2.3", "private network address"],
    ["::ffff:a9fe:a9fe", "cloud metadata address"],
    ["::127.0.0.1", "loopback address"],
    ["::7f00:1", "loopback address"],
    ["64:ff9b::127.0.0.1", "loopback address"],
    ["64:ff9b::a00:1", "private network address"],
    ["2002:7f00:1::1", "loopback address"],
    ["2002:c0a8:101::1", "private network address"],
    // not an address at all
    ["localhost", "not an IP address"],
    ["", "not an IP address"],
  ])("when the address is %s, then it is refused as a %s", (ip, reason) => {
    expect(classifyAddress(ip)).toEqual({ allowed: false, reason });
  });

  test.each(["8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])(
    "when the address is the public %s, then it is allowed",
    (ip) => {
      expect(classifyAddress(ip)).toEqual({ allowed: true });
    },
  );
});

// Issue 18 item 9: every documented cloud metadata address, in its plain and embedded spellings,
// refused by the classifier and still refused when MCP_API_ALLOW_PRIVATE_NETWORK lifts the rest.
describe("cloud metadata addresses", () => {
  test.each([
    ["169.254.169.254", "AWS, GCP, Azure, OCI, OpenStack IMDS"],
    ["169.254.170.2", "AWS ECS task credentials"],
    ["169.254.170.23", "AWS EKS Pod Identity"],
    ["168.63.129.16", "Azure WireServer"],
    ["::ffff:168.63.129.16", "Azure WireServer, IPv4-mapped"],
    ["::ffff:a83f:8110", "Azure WireServer, IPv4-mapped in hex"],
    ["64:ff9b::168.63.129.16", "Azure WireServer through NAT64"],
    ["100.100.100.200", "Alibaba Cloud"],
    ["::ffff:100.100.100.200", "Alibaba Cloud, IPv4-mapped"],
    ["192.0.0.192", "Oracle Cloud"],
    ["::ffff:192.0.0.192", "Oracle Cloud, IPv4-mapped"],
    ["169.254.0.23", "Tencent Cloud"],
    ["fd00:ec2::254", "AWS IMDS over IPv6"],
    ["FD00:EC2:0:0:0:0:0:254", "AWS IMDS over IPv6, spelled out"],
    ["fd00:ec2::23", "AWS EKS Pod Identity over IPv6"],
    ["fd20:ce::254", "GCP metadata over IPv6"],
    ["fe80::a9fe:a9fe%eth0", "OpenStack metadata over IPv6"],
    ["::ffff:169.254.169.254", "IMDS, IPv4-mapped"],
  ])("when the address is %s (%s), then it is refused, with or without the private-range guard", (ip) => {
    expect(classifyAddress(ip)).toEqual({ allowed: false, reason: "cloud metadata address" });
    expect(classifyMetadataOnly(ip)).toEqual({ allowed: false, reason: "cloud metadata address" });
  });

  test.each(["127.0.0.1", "10.0.0.1", "192.168.1.1", "169.254.1.1", "fd12::1", "::1", "192.0.0.8", "168.63.129.17", "8.8.8.8"])(
    "when the private-range guard is lifted and the address is %s, then it is allowed",
    (ip) => {
      expect(classifyMetadataOnly(ip)).toEqual({ allowed: true });
    },
  );
});

describe("parseHostLiteral", () => {
  test.each([
    ["127.0.0.1", "127.0.0.1"],
    ["2130706433", "127.0.0.1"],
    ["0177.0.0.1", "127.0.0.1"],
    ["0x7f.1", "127.0.0.1"],
    ["0x7f000001", "127.0.0.1"],
    ["0X7F.0.0.1", "127.0.0.1"],
    ["127.1", "127.0.0.1"],
    ["127.0.1", "127.0.0.1"],
    ["10.1", "10.0.0.1"],
    ["0", "0.0.0.0"],
    ["127.0.0.1.", "127.0.0.1"],
    ["3232235777", "192.168.1.1"],
    ["[::1]", "::1"],
    ["[::ffff:7f00:1]", "::ffff:7f00:1"],
    ["[FE80::1]", "fe80::1"],
    ["::1", "::1"],
  ])("when the host is %s, then it is the address %s", (host, address) => {
    expect(parseHostLiteral(host)).toBe(address);
  });

  test.each(["example.com", "localhost", "rebind.test", "127.0.0.1.nip.io", "0x7g.1", "256.1.1.1", "1.2.3.4.5", "4294967296", "08.0.0.1", "[not-an-ip]"])(
    "when the host is %s, then it is not an IP literal",
    (host) => {
      expect(parseHostLiteral(host)).toBeNull();
    },
  );

  test.each([
    ["2130706433", "loopback address"],
    ["0177.0.0.1", "loopback address"],
    ["0x7f.1", "loopback address"],
    ["127.1", "loopback address"],
    ["0xa9.0xfe.0xa9.0xfe", "cloud metadata address"],
    ["[::ffff:127.0.0.1]", "loopback address"],
  ])("when the odd spelling %s is classified, then it is refused as a %s", (host, reason) => {
    expect(classifyAddress(parseHostLiteral(host)!)).toEqual({ allowed: false, reason });
  });
});
