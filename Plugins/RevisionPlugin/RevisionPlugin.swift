import Foundation
import PackagePlugin

/// Writes `Revision.swift` (`let buildRevision = "<git revision>[-dirty]"`) before every build, so
/// `mcescan_exporter_build_info{revision}` names the commit that was actually built. Outside a git
/// checkout the revision is "unknown". The file is rewritten only when the revision changes, so an
/// unchanged checkout does not recompile anything.
@main
struct RevisionPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "Generated")
        let script = """
        rev=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null) || rev=unknown
        if [ "$rev" != unknown ] && [ -n "$(git -C "$1" status --porcelain --untracked-files=no 2>/dev/null)" ]; then rev="$rev-dirty"; fi
        mkdir -p "$2"
        line="let buildRevision = \\"$rev\\""
        [ "$(cat "$2/Revision.swift" 2>/dev/null)" = "$line" ] || printf '%s\\n' "$line" > "$2/Revision.swift"
        """
        return [.prebuildCommand(
            displayName: "Recording the git revision",
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", script, "revision", context.package.directoryURL.path, output.path],
            outputFilesDirectory: output)]
    }
}
