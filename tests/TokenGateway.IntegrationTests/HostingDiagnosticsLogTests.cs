using System.Net;
using System.Text;
using System.Text.Json;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// ADR 0004: the gateway turns the <c>Microsoft.AspNetCore.Hosting.Diagnostics</c> log category off (it made ASP.NET
/// Core start an activity and a log scope for every request), unless the <c>Serilog</c> section names a level for it.
/// </summary>
/// <remarks>Serial, like <see cref="RequestLogLevelTests"/>: hosts starting in parallel replace Serilog's static logger.</remarks>
[Collection(nameof(SerialCollection))]
public sealed class HostingDiagnosticsLogTests
{
    private const string Category = "Microsoft.AspNetCore.Hosting.Diagnostics";

    [Fact]
    public async Task Category_OffByDefault_ConfiguredLevelWins()
    {
        var silenced = await RunAsync(overrideLevel: null);
        var configured = await RunAsync(overrideLevel: "Information");

        Assert.DoesNotContain(silenced, e => Source(e) == Category);
        Assert.Contains(configured, e => Source(e) == Category); // "Request starting …" / "Request finished …"
    }

    private static string? Source(JsonElement e) => e.TryGetProperty("SourceContext", out var s) ? s.GetString() : null;

    /// <summary>One chat through a gateway logging at Information to a JSON file; the events written.</summary>
    private static async Task<List<JsonElement>> RunAsync(string? overrideLevel)
    {
        var logFile = CompactLogFile.NewPath("tg-hostingdiag-");
        var settings = CompactLogFile.GatewaySettings(logFile);
        settings["Gateway:RequestLogLevel"] = "Information"; // the completion event marks the end of the request's events
        if (overrideLevel is not null)
        {
            settings[$"Serilog:MinimumLevel:Override:{Category}"] = overrideLevel;
        }

        try
        {
            await using (var server = await GatewayServer.StartAsync(settings))
            {
                using var client = server.CreateClient();
                using var ok = await client.PostAsync("/v1/chat/completions",
                    new StringContent("""{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}""", Encoding.UTF8, "application/json"));
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            }

            // Serilog writes the completion event after the response has gone out: wait (up to 15 s) for it.
            return await CompactLogFile.WaitForEventsAsync(logFile, events => events.Any(e => e.TryGetProperty("RequestPath", out var p) && p.GetString() == "/v1/chat/completions" && e.TryGetProperty("StatusCode", out _)));
        }
        finally
        {
            File.Delete(logFile);
        }
    }
}
