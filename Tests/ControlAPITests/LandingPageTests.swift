import Testing
@testable import MetricsExporter

@Suite("Landing page")
struct LandingPageTests {
    @Test("a row per node with state, knobs, progress and errors; links to metrics and the API")
    func table() throws {
        let surface = FakeSurface()
        _ = try surface.controls[1]!.update(pagesToScan: 0)
        let page = LandingPage.render(telemetryPath: "/metrics", surface: surface)
        #expect(page.contains("<a href=\"/metrics\">"))
        #expect(page.contains("<a href=\"/api/v1/nodes\">"))
        #expect(page.contains("<tr><td>0</td><td>running</td><td>4096</td><td>10000</td><td>arena,free</td><td>100</td><td>3</td><td>2026-11-18T11:06:40.000Z</td>"))
        #expect(page.contains("<tr><td>1</td><td>parked</td><td>0</td>"))
        #expect(!page.contains("<script"))
    }
}
