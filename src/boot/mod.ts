/** x86_64 direct kernel boot: guest memory layout, kernel loaders, MP table. */
export { BootError } from "./error.ts";
export * from "./layout.ts";
export * from "./boot_state.ts";
export {
  type BootConfig,
  CMDLINE_MAX_BYTES,
  detectKernelFormat,
  loadLinux,
  placeInitrd,
} from "./loader.ts";
export { buildMpTable, ioapicId, MPTABLE_MAX_CPUS, mpTableSize, writeMpTable } from "./mptable.ts";
export { parseSetupHeader, type SetupHeader } from "./bzimage.ts";
export { type ElfKernel, parseElfKernel } from "./elf.ts";
export { gdtEntry, segmentFromGdtEntry } from "./gdt.ts";
export { type BootFiles, readBootFiles } from "./boot_files.ts";
