// Build facts carried from Package.swift into the binary. This must be C: SwiftPM can pass a
// string-valued define to a C target, but not to a Swift target.
#ifndef MCESCAN_CBUILDINFO_H
#define MCESCAN_CBUILDINFO_H
/// The git revision of the checkout that was built ("unknown" outside a git checkout).
const char *mcescan_build_revision(void);
#endif
