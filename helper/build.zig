//! Builds libstratovirt_helper.so, the small native library the Deno FFI layer opens.
//! Kernel structs come from the Linux UAPI headers: Debian's linux-libc-dev when installed
//! (the headers of the distribution the VMM runs on), else the copies shipped with Zig.
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    // The vCPU exit path runs through here: release mode unless asked otherwise.
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "optimization mode (default ReleaseFast)") orelse .ReleaseFast;
    const uapi_option = b.option([]const u8, "uapi", "directory holding linux/kvm.h (default: /usr/include when present)");

    const uapi: ?[]const u8 = uapi_option orelse blk: {
        std.fs.accessAbsolute("/usr/include/linux/kvm.h", .{}) catch break :blk null;
        break :blk "/usr/include";
    };

    const options = b.addOptions();
    options.addOption([]const u8, "uapi_dir", uapi orelse "zig-bundled");

    const lib = b.addSharedLibrary(.{
        .name = "stratovirt_helper",
        .root_source_file = .{ .path = "src/main.zig" },
        .target = target,
        .optimize = optimize,
    });
    lib.linkLibC();
    if (uapi) |dir| {
        // Only linux/, asm/ and asm-generic/ are included from here: the UAPI set is self-contained.
        lib.addSystemIncludePath(.{ .path = b.pathJoin(&.{ dir, "x86_64-linux-gnu" }) });
        lib.addSystemIncludePath(.{ .path = dir });
    }
    lib.addOptions("build_options", options);
    b.installArtifact(lib);
}
