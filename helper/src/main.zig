//! libstratovirt_helper: what Deno FFI does badly. Every function is non-variadic and returns
//! the result or `-errno`, so callers never read a thread-local errno across the FFI boundary.
comptime {
    _ = @import("syscalls.zig");
    _ = @import("kick.zig");
    _ = @import("events.zig");
    _ = @import("layout.zig");
    _ = @import("uring.zig");
    _ = @import("unix_socket.zig");
}
