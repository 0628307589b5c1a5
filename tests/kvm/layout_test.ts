/**
 * Every struct offset and size, ioctl number and constant in ffi/ equals what the kernel headers
 * say, as exported by the helper (helper/src/layout.zig, built from <linux/kvm.h>).
 */
import { assert, assertEquals } from "../lib/assert.ts";
import { type Requirement, testWhen } from "../lib/skip.ts";
import { helperAvailable } from "../../ffi/helper.ts";
import {
  ALL_LAYOUTS,
  KVM_API_VERSION,
  KVM_CAP,
  KVM_EXIT,
  KVM_FLAGS,
  KVM_IOCTL,
  KVMIO,
} from "../../ffi/kvm.ts";
import {
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLLERR,
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
} from "../../ffi/events.ts";
import { defineStruct } from "../../ffi/struct.ts";
import {
  constantDifferences,
  headerNames,
  headerValue,
  layoutDifferences,
} from "./layout_check.ts";

const helperLib: Requirement = helperAvailable;

testWhen([helperLib], "layout: every struct layout matches the kernel headers", () => {
  const diffs = ALL_LAYOUTS.flatMap((l) => layoutDifferences(l));
  assertEquals(diffs, []);
});

testWhen([helperLib], "layout: every ioctl number matches the kernel headers", () => {
  assertEquals(constantDifferences(KVM_IOCTL, "KVM_"), []);
});

testWhen(
  [helperLib],
  "layout: exit reasons, capabilities and flags match the kernel headers",
  () => {
    assertEquals(constantDifferences(KVM_EXIT, "KVM_EXIT_"), []);
    assertEquals(constantDifferences(KVM_CAP, "KVM_CAP_"), []);
    assertEquals(constantDifferences(KVM_FLAGS), []);
    assertEquals(constantDifferences({ KVMIO, KVM_API_VERSION }), []);
    assertEquals(
      constantDifferences({
        EPOLL_CTL_ADD,
        EPOLL_CTL_DEL,
        EPOLL_CTL_MOD,
        EPOLLIN,
        EPOLLOUT,
        EPOLLERR,
        EPOLLHUP,
        EPOLLET,
      }),
      [],
    );
  },
);

testWhen([helperLib], "layout: the check reports a wrong offset, size or missing member", () => {
  // The same comparison the tests above rely on, fed deliberately wrong layouts.
  const wrong = defineStruct("kvm_regs", 144, {
    rax: { offset: 0, type: "u64" },
    rbx: { offset: 16, type: "u64" },
    rcx: { offset: 24, type: "u32" },
    no_such_member: { offset: 32, type: "u64" },
  });
  const diffs = layoutDifferences(wrong);
  assert(
    diffs.some((d) => d.startsWith("offsetof kvm_regs.rbx: headers say 8, ours 16")),
    diffs.join("\n"),
  );
  assert(
    diffs.some((d) => d.startsWith("sizeof kvm_regs.rcx: headers say 8, ours 4")),
    diffs.join("\n"),
  );
  assert(
    diffs.some((d) => d.startsWith("offsetof kvm_regs.no_such_member: not in")),
    diffs.join("\n"),
  );
  assertEquals(constantDifferences({ RUN: 0xae81 }, "KVM_"), [
    "KVM_RUN: headers say 44672, ours 44673",
  ]);
});

testWhen([helperLib], "layout: the helper's table comes from the headers it names", () => {
  // Anonymous unions are flattened exactly as C names them, and flexible arrays are present.
  assertEquals(headerValue("offsetof kvm_run.io.port"), 34n);
  assertEquals(headerValue("offsetof kvm_cpuid2.entries"), 8n);
  assertEquals(headerValue("no such name"), null);
  const names = headerNames();
  assert(names.length > 500, `only ${names.length} entries`);
  assert(names.includes("sizeof kvm_run"));
});
