/** The version this build reports (`-version`, QMP greeting's `package`). */
export const VERSION = "2.4.0";
