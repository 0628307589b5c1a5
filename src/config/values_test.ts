import { assertEquals } from "../../tests/lib/assert.ts";
import {
  formatSize,
  GIB,
  MIB,
  parseBool,
  parseHex,
  parseIdList,
  parseSize,
  parseUint,
} from "./values.ts";

Deno.test("parseBool: StratoVirt's on/off/true/false/yes/no, nothing else", () => {
  for (const t of ["on", "true", "yes", "ON", "True"]) assertEquals(parseBool(t), true, t);
  for (const t of ["off", "false", "no", "OFF"]) assertEquals(parseBool(t), false, t);
  for (const t of ["1", "0", "", "onn", "y"]) assertEquals(parseBool(t), undefined, t);
});

Deno.test("parseUint: decimal and 0x hex, no signs, no overflow", () => {
  assertEquals(parseUint("42"), 42);
  assertEquals(parseUint("0x1F"), 31);
  assertEquals(parseUint("007"), 7);
  for (const t of ["-1", "+1", "1.5", "", "0x", "1e3", "99999999999999999999"]) {
    assertEquals(parseUint(t), undefined, t);
  }
});

Deno.test("parseHex: with or without 0x", () => {
  assertEquals(parseHex("0x1f"), 31);
  assertEquals(parseHex("1f"), 31);
  assertEquals(parseHex("0xg"), undefined);
  assertEquals(parseHex(""), undefined);
});

Deno.test("parseSize: K/M/G/T in either case, bare number in the default unit", () => {
  assertEquals(parseSize("256"), 256 * MIB);
  assertEquals(parseSize("256m"), 256 * MIB);
  assertEquals(parseSize("256M"), 256 * MIB);
  assertEquals(parseSize("1G"), GIB);
  assertEquals(parseSize("1g"), GIB);
  assertEquals(parseSize("512K"), 512 * 1024);
  assertEquals(parseSize("2GiB"), 2 * GIB);
  assertEquals(parseSize("4096", "B"), 4096);
  for (const t of ["", "G", "1.5G", "-1G", "1Q", "1 G", "1b"]) {
    assertEquals(parseSize(t), undefined, t);
  }
});

Deno.test("formatSize: shortest exact unit", () => {
  assertEquals(formatSize(256 * MIB), "256M");
  assertEquals(formatSize(512 * GIB), "512G");
  assertEquals(formatSize(1536 * MIB), "1536M");
  assertEquals(formatSize(1000), "1000");
});

Deno.test("parseIdList: ranges joined by ':'", () => {
  assertEquals(parseIdList("0-1:4-5", 7), [0, 1, 4, 5]);
  assertEquals(parseIdList("3", 7), [3]);
  assertEquals(parseIdList("5:1-2:2", 7), [1, 2, 5]);
  for (const t of ["", "2-1", "0-8", "a", "0,1", "1-"]) {
    assertEquals(parseIdList(t, 7), undefined, t);
  }
});
