//! Kernel struct layouts and ioctl numbers straight from the Linux UAPI headers, exported by name
//! so the TypeScript views can be checked against them:
//!   "sizeof kvm_run", "offsetof kvm_run.io.port", "sizeof kvm_run.io.port", "KVM_RUN".
//! Member paths are written as in C: anonymous unions/structs add no path component.
//! struct kvm_irqchip (and so KVM_GET/SET_IRQCHIP) is missing: its IOAPIC redirection entry
//! is a bitfield, which translate-c cannot lay out.
const std = @import("std");
const build_options = @import("build_options");

const c = @cImport({
    @cInclude("linux/kvm.h");
    @cInclude("linux/eventpoll.h");
    @cInclude("linux/time_types.h");
});

const Entry = struct { name: [:0]const u8, value: i64 };

/// The structs whose every member (recursively) is exported.
const structs = .{
    .{ "kvm_run", c.struct_kvm_run },
    .{ "kvm_regs", c.struct_kvm_regs },
    .{ "kvm_sregs", c.struct_kvm_sregs },
    .{ "kvm_segment", c.struct_kvm_segment },
    .{ "kvm_dtable", c.struct_kvm_dtable },
    .{ "kvm_userspace_memory_region", c.struct_kvm_userspace_memory_region },
    .{ "kvm_cpuid2", c.struct_kvm_cpuid2 },
    .{ "kvm_cpuid_entry2", c.struct_kvm_cpuid_entry2 },
    .{ "kvm_msrs", c.struct_kvm_msrs },
    .{ "kvm_msr_entry", c.struct_kvm_msr_entry },
    .{ "kvm_msr_list", c.struct_kvm_msr_list },
    .{ "kvm_irqfd", c.struct_kvm_irqfd },
    .{ "kvm_ioeventfd", c.struct_kvm_ioeventfd },
    .{ "kvm_lapic_state", c.struct_kvm_lapic_state },
    .{ "kvm_fpu", c.struct_kvm_fpu },
    .{ "kvm_pit_config", c.struct_kvm_pit_config },
    .{ "kvm_irq_level", c.struct_kvm_irq_level },
    .{ "kvm_irq_routing", c.struct_kvm_irq_routing },
    .{ "kvm_irq_routing_entry", c.struct_kvm_irq_routing_entry },
    .{ "kvm_irq_routing_irqchip", c.struct_kvm_irq_routing_irqchip },
    .{ "kvm_irq_routing_msi", c.struct_kvm_irq_routing_msi },
    .{ "kvm_msi", c.struct_kvm_msi },
    .{ "kvm_mp_state", c.struct_kvm_mp_state },
    .{ "kvm_vcpu_events", c.struct_kvm_vcpu_events },
    .{ "kvm_xcrs", c.struct_kvm_xcrs },
    .{ "kvm_xcr", c.struct_kvm_xcr },
    .{ "kvm_clock_data", c.struct_kvm_clock_data },
    .{ "kvm_enable_cap", c.struct_kvm_enable_cap },
    .{ "kvm_coalesced_mmio_zone", c.struct_kvm_coalesced_mmio_zone },
    .{ "kvm_coalesced_mmio", c.struct_kvm_coalesced_mmio },
    .{ "kvm_coalesced_mmio_ring", c.struct_kvm_coalesced_mmio_ring },
    .{ "kvm_pit_state2", c.struct_kvm_pit_state2 },
    .{ "kvm_xsave", c.struct_kvm_xsave },
    .{ "kvm_debugregs", c.struct_kvm_debugregs },
    .{ "kvm_guest_debug", c.struct_kvm_guest_debug },
    .{ "kvm_interrupt", c.struct_kvm_interrupt },
    .{ "epoll_event", c.struct_epoll_event },
    .{ "__kernel_itimerspec", c.struct___kernel_itimerspec },
};

/// Macros (ioctl numbers, exit reasons, capabilities, flags) exported under their C names.
const constants = .{
    // system ioctls
    "KVMIO",
    "KVM_API_VERSION",
    "KVM_GET_API_VERSION",
    "KVM_CREATE_VM",
    "KVM_GET_MSR_INDEX_LIST",
    "KVM_GET_MSR_FEATURE_INDEX_LIST",
    "KVM_CHECK_EXTENSION",
    "KVM_GET_VCPU_MMAP_SIZE",
    "KVM_GET_SUPPORTED_CPUID",
    "KVM_GET_EMULATED_CPUID",
    // vm ioctls
    "KVM_CREATE_VCPU",
    "KVM_SET_USER_MEMORY_REGION",
    "KVM_SET_TSS_ADDR",
    "KVM_SET_IDENTITY_MAP_ADDR",
    "KVM_CREATE_IRQCHIP",
    "KVM_CREATE_PIT2",
    "KVM_IRQ_LINE",
    "KVM_IRQ_LINE_STATUS",
    "KVM_GET_PIT2",
    "KVM_SET_PIT2",
    "KVM_IRQFD",
    "KVM_IOEVENTFD",
    "KVM_SET_GSI_ROUTING",
    "KVM_SIGNAL_MSI",
    "KVM_GET_CLOCK",
    "KVM_SET_CLOCK",
    "KVM_REGISTER_COALESCED_MMIO",
    "KVM_UNREGISTER_COALESCED_MMIO",
    "KVM_ENABLE_CAP",
    "KVM_GET_DIRTY_LOG",
    "KVM_SET_BOOT_CPU_ID",
    // vcpu ioctls
    "KVM_RUN",
    "KVM_GET_REGS",
    "KVM_SET_REGS",
    "KVM_GET_SREGS",
    "KVM_SET_SREGS",
    "KVM_SET_CPUID2",
    "KVM_GET_CPUID2",
    "KVM_GET_MSRS",
    "KVM_SET_MSRS",
    "KVM_GET_FPU",
    "KVM_SET_FPU",
    "KVM_GET_LAPIC",
    "KVM_SET_LAPIC",
    "KVM_GET_MP_STATE",
    "KVM_SET_MP_STATE",
    "KVM_GET_VCPU_EVENTS",
    "KVM_SET_VCPU_EVENTS",
    "KVM_GET_XCRS",
    "KVM_SET_XCRS",
    "KVM_GET_XSAVE",
    "KVM_SET_XSAVE",
    "KVM_GET_DEBUGREGS",
    "KVM_SET_DEBUGREGS",
    "KVM_SET_GUEST_DEBUG",
    "KVM_GET_TSC_KHZ",
    "KVM_SET_TSC_KHZ",
    "KVM_KVMCLOCK_CTRL",
    "KVM_INTERRUPT",
    "KVM_NMI",
    "KVM_SET_SIGNAL_MASK",
    // exit reasons
    "KVM_EXIT_UNKNOWN",
    "KVM_EXIT_EXCEPTION",
    "KVM_EXIT_IO",
    "KVM_EXIT_HYPERCALL",
    "KVM_EXIT_DEBUG",
    "KVM_EXIT_HLT",
    "KVM_EXIT_MMIO",
    "KVM_EXIT_IRQ_WINDOW_OPEN",
    "KVM_EXIT_SHUTDOWN",
    "KVM_EXIT_FAIL_ENTRY",
    "KVM_EXIT_INTR",
    "KVM_EXIT_SET_TPR",
    "KVM_EXIT_TPR_ACCESS",
    "KVM_EXIT_NMI",
    "KVM_EXIT_INTERNAL_ERROR",
    "KVM_EXIT_SYSTEM_EVENT",
    "KVM_EXIT_IOAPIC_EOI",
    "KVM_EXIT_X86_RDMSR",
    "KVM_EXIT_X86_WRMSR",
    "KVM_EXIT_DIRTY_RING_FULL",
    "KVM_EXIT_NOTIFY",
    "KVM_EXIT_IO_IN",
    "KVM_EXIT_IO_OUT",
    "KVM_INTERNAL_ERROR_EMULATION",
    "KVM_INTERNAL_ERROR_SIMUL_EX",
    "KVM_INTERNAL_ERROR_DELIVERY_EV",
    "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON",
    "KVM_SYSTEM_EVENT_SHUTDOWN",
    "KVM_SYSTEM_EVENT_RESET",
    "KVM_SYSTEM_EVENT_CRASH",
    // capabilities
    "KVM_CAP_IRQCHIP",
    "KVM_CAP_HLT",
    "KVM_CAP_USER_MEMORY",
    "KVM_CAP_SET_TSS_ADDR",
    "KVM_CAP_EXT_CPUID",
    "KVM_CAP_NR_VCPUS",
    "KVM_CAP_NR_MEMSLOTS",
    "KVM_CAP_PIT2",
    "KVM_CAP_IOEVENTFD",
    "KVM_CAP_IRQFD",
    "KVM_CAP_IRQ_ROUTING",
    "KVM_CAP_SIGNAL_MSI",
    "KVM_CAP_IMMEDIATE_EXIT",
    "KVM_CAP_XSAVE",
    "KVM_CAP_XCRS",
    "KVM_CAP_VCPU_EVENTS",
    "KVM_CAP_DEBUGREGS",
    "KVM_CAP_MP_STATE",
    "KVM_CAP_KVMCLOCK_CTRL",
    "KVM_CAP_ADJUST_CLOCK",
    "KVM_CAP_SPLIT_IRQCHIP",
    "KVM_CAP_X2APIC_API",
    "KVM_CAP_GET_TSC_KHZ",
    "KVM_CAP_TSC_CONTROL",
    "KVM_CAP_SET_IDENTITY_MAP_ADDR",
    "KVM_CAP_READONLY_MEM",
    "KVM_CAP_COALESCED_MMIO",
    "KVM_CAP_COALESCED_PIO",
    "KVM_CAP_MAX_VCPUS",
    "KVM_CAP_MAX_VCPU_ID",
    "KVM_CAP_MSR_PLATFORM_INFO",
    "KVM_CAP_X86_USER_SPACE_MSR",
    "KVM_CAP_X86_MSR_FILTER",
    "KVM_CAP_IRQFD_RESAMPLE",
    "KVM_CAP_PIT_STATE2",
    "KVM_CAP_IOEVENTFD_ANY_LENGTH",
    "KVM_CAP_DIRTY_LOG_RING",
    "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2",
    // flags and enumerations
    "KVM_MEM_LOG_DIRTY_PAGES",
    "KVM_MEM_READONLY",
    "KVM_IRQFD_FLAG_DEASSIGN",
    "KVM_IRQFD_FLAG_RESAMPLE",
    "KVM_IOEVENTFD_FLAG_DATAMATCH",
    "KVM_IOEVENTFD_FLAG_PIO",
    "KVM_IOEVENTFD_FLAG_DEASSIGN",
    "KVM_IRQ_ROUTING_IRQCHIP",
    "KVM_IRQ_ROUTING_MSI",
    "KVM_IRQCHIP_PIC_MASTER",
    "KVM_IRQCHIP_PIC_SLAVE",
    "KVM_IRQCHIP_IOAPIC",
    "KVM_PIT_SPEAKER_DUMMY",
    "KVM_MP_STATE_RUNNABLE",
    "KVM_MP_STATE_UNINITIALIZED",
    "KVM_MP_STATE_INIT_RECEIVED",
    "KVM_MP_STATE_HALTED",
    "KVM_MP_STATE_SIPI_RECEIVED",
    "KVM_VCPUEVENT_VALID_NMI_PENDING",
    "KVM_VCPUEVENT_VALID_SIPI_VECTOR",
    "KVM_VCPUEVENT_VALID_SHADOW",
    "KVM_VCPUEVENT_VALID_SMM",
    "KVM_CPUID_FLAG_SIGNIFCANT_INDEX",
    "KVM_CLOCK_TSC_STABLE",
    "KVM_MSI_VALID_DEVID",
    "KVM_NR_INTERRUPTS",
    "KVM_MAX_XCRS",
    "KVM_GUESTDBG_ENABLE",
    "KVM_GUESTDBG_SINGLESTEP",
    // epoll
    "EPOLL_CTL_ADD",
    "EPOLL_CTL_DEL",
    "EPOLL_CTL_MOD",
    "EPOLLIN",
    "EPOLLOUT",
    "EPOLLERR",
    "EPOLLHUP",
    "EPOLLET",
};

fn isAnonymous(name: []const u8) bool {
    return std.mem.startsWith(u8, name, "unnamed_");
}

fn isAggregate(comptime T: type) bool {
    return switch (@typeInfo(T)) {
        .Struct, .Union => true,
        else => false,
    };
}

fn fieldsOf(comptime T: type) switch (@typeInfo(T)) {
    .Struct => []const std.builtin.Type.StructField,
    .Union => []const std.builtin.Type.UnionField,
    else => unreachable,
} {
    return switch (@typeInfo(T)) {
        .Struct => |s| s.fields,
        .Union => |u| u.fields,
        else => unreachable,
    };
}

fn fieldOffset(comptime T: type, comptime name: []const u8) usize {
    return switch (@typeInfo(T)) {
        .Struct => @offsetOf(T, name),
        else => 0, // every union member starts at the union's start
    };
}

/// Every member of T below `path`, at absolute offsets from the outermost struct.
fn members(comptime path: []const u8, comptime T: type, comptime base: usize) []const Entry {
    var out: []const Entry = &.{};
    for (fieldsOf(T)) |f| {
        const off = base + fieldOffset(T, f.name);
        if (isAnonymous(f.name)) {
            out = out ++ members(path, f.type, off);
            continue;
        }
        // translate-c turns a flexible array member `x[]` into a zero-sized `__empty_x`.
        const flexible = std.mem.startsWith(u8, f.name, "__empty_");
        const name = if (flexible) f.name["__empty_".len..] else f.name;
        const p = path ++ "." ++ name;
        out = out ++ &[_]Entry{.{ .name = "offsetof " ++ p, .value = off }};
        if (flexible) continue;
        out = out ++ &[_]Entry{.{ .name = "sizeof " ++ p, .value = @sizeOf(f.type) }};
        if (isAggregate(f.type)) out = out ++ members(p, f.type, off);
    }
    return out;
}

fn asI64(comptime v: anytype) i64 {
    return switch (@typeInfo(@TypeOf(v))) {
        .Pointer => unreachable,
        else => @intCast(v),
    };
}

const table: []const Entry = blk: {
    @setEvalBranchQuota(2_000_000);
    var out: []const Entry = &.{};
    for (structs) |s| {
        out = out ++ &[_]Entry{.{ .name = "sizeof " ++ s[0], .value = @sizeOf(s[1]) }};
        out = out ++ members(s[0], s[1], 0);
    }
    for (constants) |name| {
        out = out ++ &[_]Entry{.{ .name = name, .value = asI64(@field(c, name)) }};
    }
    break :blk out;
};

/// Sentinel for a name the table does not hold (no real entry is negative).
const unknown: i64 = std.math.minInt(i64);

/// The value named `name` (see the file comment), or minInt(i64) when there is none.
export fn sv_layout(name: [*:0]const u8) i64 {
    const wanted = std.mem.span(name);
    for (table) |e| {
        if (std.mem.eql(u8, e.name, wanted)) return e.value;
    }
    return unknown;
}

/// Number of entries, to enumerate them with sv_layout_name.
export fn sv_layout_count() u32 {
    return table.len;
}

/// Name of entry `i`, or null past the end.
export fn sv_layout_name(i: u32) ?[*:0]const u8 {
    if (i >= table.len) return null;
    return table[i].name.ptr;
}

/// Where the headers came from: a directory, or "zig-bundled".
export fn sv_uapi_dir() [*:0]const u8 {
    return std.fmt.comptimePrint("{s}", .{build_options.uapi_dir});
}
