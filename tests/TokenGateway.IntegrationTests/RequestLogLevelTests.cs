using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// Issue #17: the request-completion log event of a successful request is written at <c>Gateway:RequestLogLevel</c>
/// (default Debug, so the shipped Information minimum level writes none); refusals keep Information.
/// </summary>
/// <remarks>
/// Serial, like <see cref="SecretRedactionTests"/>: hosts starting in parallel replace Serilog's static logger, and the
/// request-logging middleware's logger may then be another host's.
/// </remarks>
[Collection(nameof(SerialCollection))]
public sealed class RequestLogLevelTests
{
    private const string Chat = """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}""";

    [Fact]
    public async Task Success_AtDefaultLevel_NotLoggedAtInformation_RefusalIs()
    {
        var events = await RunAsync(successLevel: null);

        Assert.DoesNotContain(events, e => Path(e) == "/v1/chat/completions" && Status(e) == 200);
        var refused = Assert.Single(events, e => Path(e) == "/v1/chat/completions" && Status(e) == 401);
        Assert.False(refused.TryGetProperty("@l", out _), "A refusal is logged at Information (compact JSON omits that level).");
    }

    [Fact]
    public async Task Success_WithRequestLogLevelInformation_LoggedAndEnriched()
    {
        var events = await RunAsync(successLevel: "Information");

        var ok = Assert.Single(events, e => Path(e) == "/v1/chat/completions" && Status(e) == 200);
        Assert.False(ok.TryGetProperty("@l", out _));
        Assert.Equal("ok", ok.GetProperty("UsageStatus").GetString());
        Assert.StartsWith("req_", ok.GetProperty("RequestId").GetString(), StringComparison.Ordinal);
        Assert.Single(events, e => Path(e) == "/v1/chat/completions" && Status(e) == 401);
    }

    private static string? Path(JsonElement e) => e.TryGetProperty("RequestPath", out var p) ? p.GetString() : null;

    private static int Status(JsonElement e) => e.TryGetProperty("StatusCode", out var s) ? s.GetInt32() : 0;

    /// <summary>One successful chat and one refused (bad key) through a gateway logging at Information to a JSON file.</summary>
    private static async Task<List<JsonElement>> RunAsync(string? successLevel)
    {
        var logFile = CompactLogFile.NewPath("tg-loglevel-");
        var settings = CompactLogFile.GatewaySettings(logFile);
        if (successLevel is not null)
        {
            settings["Gateway:RequestLogLevel"] = successLevel;
        }

        try
        {
            await using (var server = await GatewayServer.StartAsync(settings))
            {
                using var client = server.CreateClient();
                using var ok = await client.PostAsync("/v1/chat/completions", new StringContent(Chat, Encoding.UTF8, "application/json"));
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
                client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "tg-not-a-key");
                using var refused = await client.PostAsync("/v1/chat/completions", new StringContent(Chat, Encoding.UTF8, "application/json"));
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            }

            // Serilog writes the completion event after the response has gone out: wait (up to 15 s) for the refusal's, written last.
            return await CompactLogFile.WaitForEventsAsync(logFile, events => events.Any(e => Status(e) == 401));
        }
        finally
        {
            File.Delete(logFile);
        }
    }
}
