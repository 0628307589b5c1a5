//! The fallback single-binary launcher (see docs/build.md).
//!
//! `scripts/build.sh` appends a payload to this program: the Deno runtime, then the program's
//! sources and the helper library, as two archive sections followed by a fixed-size trailer. On
//! start we read the trailer from /proc/self/exe, extract each section once into a cache
//! directory named after its content hash (`deno-<hash>`, `app-<hash>`; rebuilding the program
//! reuses the runtime already extracted), and execve the cached Deno on `main.ts` (or
//! `src/ozone/main.ts` when started as `ozone`). execve keeps the pid, stdin/stdout/stderr, the exit
//! status and signal delivery.
//!
//! Section archive: entries of { u32 path_len, u32 mode, u64 size, path, data } (little endian).
//! Trailer, the last 128 bytes of the file: magic "SVPAYLD2", then two section records (runtime,
//! app) of { u64 offset, u64 length, u32 crc32, u32 entry count, 16-byte key }, zero padding.
//! A key is the first 16 bytes of a sha256: of the runtime section's bytes, and of the runtime
//! key followed by the app section's bytes (so an app's transpile cache follows its runtime).
const std = @import("std");
const os = std.os;
const linux = std.os.linux;
const mem = std.mem;

const magic = "SVPAYLD2";
const trailer_len = 128;
const section_record_len = 40;
const entry_header_len = 16;
const max_path_len = 4096;

const Section = struct {
    prefix: []const u8, // cache directory name: prefix ++ hex key
    offset: u64,
    length: u64,
    crc: u32,
    entries: u32,
    name: []const u8,
};

var arena_state = std.heap.ArenaAllocator.init(std.heap.page_allocator);
const arena = arena_state.allocator();

var program_name: []const u8 = "stratovirt";

fn fatal(comptime fmt: []const u8, args: anytype) noreturn {
    const stderr = std.io.getStdErr().writer();
    stderr.print("{s}: " ++ fmt ++ "\n", .{program_name} ++ args) catch {};
    os.exit(1);
}

pub fn main() noreturn {
    const arg0 = mem.sliceTo(os.argv[0], 0);
    const base_name = std.fs.path.basename(arg0);
    // `ozone`, or any name starting with it (a hard link or symlink works too).
    const is_ozone = mem.startsWith(u8, base_name, "ozone");
    program_name = if (is_ozone) "ozone" else "stratovirt";

    const exe_fd = os.openZ("/proc/self/exe", os.O.RDONLY | os.O.CLOEXEC, 0) catch |e|
        fatal("cannot open /proc/self/exe to find the payload: {s}", .{@errorName(e)});
    const sections = readTrailer(exe_fd);
    const candidates = cacheCandidates();
    const runtime_dir = ensureExtracted(exe_fd, sections[0], candidates);
    const app_dir = ensureExtracted(exe_fd, sections[1], candidates);
    run(runtime_dir, app_dir, if (is_ozone) "src/ozone/main.ts" else "main.ts");
}

/// The directory holding `section`, extracting it on the first run.
fn ensureExtracted(exe_fd: os.fd_t, section: Section, candidates: []const Candidate) []const u8 {
    // Fast path: an earlier run already extracted this exact section. Directories only appear
    // under their final name once complete (see extract).
    for (candidates) |c| {
        if (c.shared and !sharedBaseIsSafe(c.path)) continue;
        const dir = join(&.{ c.path, section.name });
        if (exists(dir)) return dir;
    }
    var reasons = std.ArrayList(u8).init(arena);
    for (candidates) |c| {
        if (extract(exe_fd, section, c)) |dir| return dir else |e| {
            if (e == error.PayloadCorrupt or e == error.PayloadMalformed) fatal(
                "the payload inside {s} is corrupted ({s} section: checksum or layout mismatch); rebuild it with scripts/build.sh",
                .{ selfPath(), section.prefix[0 .. section.prefix.len - 1] },
            );
            reasons.writer().print("\n  {s}: {s}", .{ c.path, @errorName(e) }) catch {};
        }
    }
    fatal("could not extract into any cache directory (set STRATOVIRT_CACHE or TMPDIR to a writable directory):{s}", .{reasons.items});
}

fn exists(path: [:0]const u8) bool {
    os.accessZ(path, os.F_OK) catch return false;
    return true;
}

fn readTrailer(fd: os.fd_t) [2]Section {
    const st = os.fstat(fd) catch |e| fatal("cannot stat /proc/self/exe: {s}", .{@errorName(e)});
    const size: u64 = @intCast(st.size);
    var buf: [trailer_len]u8 = undefined;
    if (size < trailer_len or (os.pread(fd, &buf, size - trailer_len) catch 0) != trailer_len or
        !mem.eql(u8, buf[0..8], magic))
    {
        fatal("no payload found at the end of {s}: the file is truncated or is the bare launcher; rebuild it with scripts/build.sh", .{selfPath()});
    }
    var sections: [2]Section = undefined;
    // The sections lie back to back between the launcher and the trailer.
    var expected_end = size - trailer_len;
    var i: usize = 2;
    while (i > 0) {
        i -= 1;
        const r = buf[8 + i * section_record_len ..][0..section_record_len];
        const prefix = if (i == 0) "deno-" else "app-";
        const key = std.fmt.bytesToHex(r[24..40].*, .lower);
        sections[i] = .{
            .prefix = prefix,
            .offset = mem.readIntLittle(u64, r[0..8]),
            .length = mem.readIntLittle(u64, r[8..16]),
            .crc = mem.readIntLittle(u32, r[16..20]),
            .entries = mem.readIntLittle(u32, r[20..24]),
            .name = std.fmt.allocPrint(arena, "{s}{s}", .{ prefix, &key }) catch fatal("out of memory", .{}),
        };
        const sec = sections[i];
        if (sec.length > expected_end or sec.offset != expected_end - sec.length) {
            fatal("the payload inside {s} is truncated or damaged (the trailer does not match the file size {d}); rebuild it with scripts/build.sh", .{ selfPath(), size });
        }
        expected_end = sec.offset;
    }
    return sections;
}

fn selfPath() []const u8 {
    const buf = arena.alloc(u8, max_path_len) catch return "/proc/self/exe";
    return os.readlinkZ("/proc/self/exe", buf) catch "/proc/self/exe";
}

fn join(parts: []const []const u8) [:0]const u8 {
    return std.fs.path.joinZ(arena, parts) catch fatal("out of memory", .{});
}

fn nonEmptyAbsolute(name: []const u8) ?[]const u8 {
    const v = os.getenv(name) orelse return null;
    if (v.len == 0 or v[0] != '/') return null;
    return v;
}

/// A directory that may hold extracted payloads. `shared`: inside a temp dir other users can write.
const Candidate = struct { path: []const u8, shared: bool };

/// Where the extracted payload may live, most preferred first.
fn cacheCandidates() []const Candidate {
    var list = std.ArrayList(Candidate).init(arena);
    const home_cache: ?[]const u8 = if (nonEmptyAbsolute("STRATOVIRT_CACHE")) |c|
        join(&.{ c, "run" })
    else if (nonEmptyAbsolute("XDG_CACHE_HOME")) |c|
        join(&.{ c, "stratovirt", "run" })
    else if (nonEmptyAbsolute("HOME")) |h|
        join(&.{ h, ".cache", "stratovirt", "run" })
    else
        null;
    if (home_cache) |p| list.append(.{ .path = p, .shared = false }) catch {};
    const tmp = nonEmptyAbsolute("TMPDIR") orelse "/tmp";
    const user_dir = std.fmt.allocPrint(arena, "stratovirt-{d}", .{linux.getuid()}) catch
        fatal("out of memory", .{});
    list.append(.{ .path = join(&.{ tmp, user_dir, "run" }), .shared = true }) catch {};
    return list.items;
}

/// A cache in a shared temp dir is only trusted when its per-user parent is ours and private,
/// so nobody else can plant a runtime for us to exec.
fn sharedBaseIsSafe(base: []const u8) bool {
    const parent = std.fs.path.dirname(base) orelse return false;
    const st = os.fstatat(os.AT.FDCWD, parent, os.AT.SYMLINK_NOFOLLOW) catch return false;
    return os.S.ISDIR(st.mode) and st.uid == linux.getuid() and st.mode & 0o077 == 0;
}

/// Replaces this process with the cached Deno running the entry module of the app tree.
fn run(runtime_dir: []const u8, dir: []const u8, entry: []const u8) noreturn {
    const deno = join(&.{ runtime_dir, "deno" });
    const config = join(&.{ dir, "deno.json" });
    const has_config = exists(config);

    var argv = std.ArrayList(?[*:0]const u8).init(arena);
    const fixed = [_][:0]const u8{ deno, "run", "-A", "--quiet", "--no-prompt", "--no-remote", "--no-npm", "--no-lock" };
    for (fixed) |a| argv.append(a) catch fatal("out of memory", .{});
    if (has_config) {
        argv.appendSlice(&.{ "--config", config }) catch fatal("out of memory", .{});
    } else {
        argv.append("--no-config") catch fatal("out of memory", .{});
    }
    argv.append(join(&.{ dir, entry })) catch fatal("out of memory", .{});
    for (os.argv[1..]) |a| argv.append(a) catch fatal("out of memory", .{});
    argv.append(null) catch fatal("out of memory", .{});

    const helper = join(&.{ dir, "helper", "zig-out", "lib", "libstratovirt_helper.so" });
    const has_helper = exists(helper);

    const ours = [_][]const u8{
        "DENO_DIR", "DENO_NO_UPDATE_CHECK", "DENO_NO_PACKAGE_JSON", "STRATOVIRT_HELPER", "STRATOVIRT_EXE",
    };
    var env = std.ArrayList(?[*:0]const u8).init(arena);
    outer: for (os.environ) |line| {
        const kv = mem.sliceTo(line, 0);
        const key = kv[0 .. mem.indexOfScalar(u8, kv, '=') orelse kv.len];
        for (ours) |o| if (mem.eql(u8, key, o)) continue :outer;
        env.append(line) catch fatal("out of memory", .{});
    }
    const extra = [_]?[:0]const u8{
        std.fmt.allocPrintZ(arena, "DENO_DIR={s}/deno_dir", .{dir}) catch null,
        "DENO_NO_UPDATE_CHECK=1",
        "DENO_NO_PACKAGE_JSON=1",
        if (has_helper) std.fmt.allocPrintZ(arena, "STRATOVIRT_HELPER={s}", .{helper}) catch null else null,
        std.fmt.allocPrintZ(arena, "STRATOVIRT_EXE={s}", .{selfPath()}) catch null,
    };
    for (extra) |e| if (e) |v| env.append(v) catch fatal("out of memory", .{});
    env.append(null) catch fatal("out of memory", .{});

    const argv_z: [*:null]const ?[*:0]const u8 = @ptrCast(argv.items.ptr);
    const env_z: [*:null]const ?[*:0]const u8 = @ptrCast(env.items.ptr);
    const err = os.execveZ(deno, argv_z, env_z);
    fatal("cannot start the Deno runtime {s}: {s}", .{ deno, @errorName(err) });
}

const ExtractError = error{ PayloadCorrupt, PayloadMalformed, UnsafeCacheDir } || anyerror;

/// Extracts `section` into `<base>/<name>` through a private temp dir and an atomic rename, so
/// concurrent first runs and interrupted extractions never expose a half-written tree.
fn extract(exe_fd: os.fd_t, section: Section, c: Candidate) ExtractError![]const u8 {
    const base = c.path;
    if (c.shared) {
        const parent = std.fs.path.dirname(base).?;
        os.mkdir(parent, 0o700) catch |e| if (e != error.PathAlreadyExists) return e;
        if (!sharedBaseIsSafe(base)) return error.UnsafeCacheDir;
    }
    try std.fs.cwd().makePath(base);
    var base_dir = try std.fs.cwd().openIterableDir(base, .{});
    defer base_dir.close();

    const final = join(&.{ base, section.name });
    if (exists(final)) return final;
    removeStaleTemps(base_dir);

    const tmp_name = try std.fmt.allocPrint(arena, ".tmp-{s}-{d}", .{ section.name, linux.getpid() });
    base_dir.dir.deleteTree(tmp_name) catch {};
    try base_dir.dir.makeDir(tmp_name);
    var tmp_dir = try base_dir.dir.openDir(tmp_name, .{});
    defer tmp_dir.close();

    unpack(exe_fd, section, tmp_dir) catch |e| {
        base_dir.dir.deleteTree(tmp_name) catch {};
        return e;
    };
    os.fchmod(tmp_dir.fd, 0o755) catch {};
    base_dir.dir.rename(tmp_name, section.name) catch |e| {
        base_dir.dir.deleteTree(tmp_name) catch {};
        // Another first run got there before us: its tree is complete and identical.
        if (e == error.PathAlreadyExists and exists(final)) return final;
        return e;
    };
    return final;
}

/// Temp dirs left by extractions that were killed midway: their pid no longer exists.
fn removeStaleTemps(base_dir: std.fs.IterableDir) void {
    var it = base_dir.iterate();
    var stale = std.ArrayList([]const u8).init(arena);
    while (it.next() catch null) |e| {
        if (!mem.startsWith(u8, e.name, ".tmp-")) continue;
        const dash = mem.lastIndexOfScalar(u8, e.name, '-') orelse continue;
        const pid = std.fmt.parseInt(i32, e.name[dash + 1 ..], 10) catch continue;
        if (linux.getErrno(linux.kill(pid, 0)) == .SRCH) {
            stale.append(arena.dupe(u8, e.name) catch continue) catch {};
        }
    }
    for (stale.items) |name| base_dir.dir.deleteTree(name) catch {};
}

const Reader = struct {
    fd: os.fd_t,
    pos: u64,
    end: u64,
    crc: std.hash.Crc32 = std.hash.Crc32.init(),

    fn read(self: *Reader, buf: []u8) !void {
        if (buf.len > self.end - self.pos) return error.PayloadMalformed;
        var done: usize = 0;
        while (done < buf.len) {
            const n = try os.pread(self.fd, buf[done..], self.pos + done);
            if (n == 0) return error.PayloadMalformed;
            done += n;
        }
        self.pos += buf.len;
        self.crc.update(buf);
    }
};

fn validPath(path: []const u8) bool {
    if (path.len == 0 or path[0] == '/') return false;
    var it = mem.splitScalar(u8, path, '/');
    while (it.next()) |part| {
        if (part.len == 0 or mem.eql(u8, part, ".") or mem.eql(u8, part, "..")) return false;
        if (mem.indexOfScalar(u8, part, 0) != null) return false;
    }
    return true;
}

fn unpack(exe_fd: os.fd_t, t: Section, dir: std.fs.Dir) !void {
    var r = Reader{ .fd = exe_fd, .pos = t.offset, .end = t.offset + t.length };
    const buf = try arena.alloc(u8, 1 << 20);
    var count: u32 = 0;
    while (r.pos < r.end) : (count += 1) {
        var header: [entry_header_len]u8 = undefined;
        try r.read(&header);
        const path_len = mem.readIntLittle(u32, header[0..4]);
        const mode = mem.readIntLittle(u32, header[4..8]);
        var size = mem.readIntLittle(u64, header[8..16]);
        if (path_len > max_path_len) return error.PayloadMalformed;
        const path = buf[0..path_len];
        try r.read(path);
        if (!validPath(path)) return error.PayloadMalformed;
        if (std.fs.path.dirname(path)) |parent| try dir.makePath(parent);
        var file = try dir.createFile(path, .{ .exclusive = true, .mode = @intCast(mode & 0o755) });
        defer file.close();
        while (size > 0) {
            const chunk = buf[0..@intCast(@min(size, buf.len))];
            try r.read(chunk);
            try file.writeAll(chunk);
            size -= chunk.len;
        }
    }
    if (count != t.entries or r.crc.final() != t.crc) return error.PayloadCorrupt;
}
