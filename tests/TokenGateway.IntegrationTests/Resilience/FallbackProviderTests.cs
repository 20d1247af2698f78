using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Resilience;

/// <summary>
/// Issue #13, a fallback to a model of another provider of the same API (<c>gpt-4o-mini</c> on <c>openai</c> →
/// <c>azure-gpt-4o</c> on <c>azure</c>): what happens after the switch names and uses the provider actually tried — the
/// forwarder-error message and log line, and the structured-output repair call (sent to, priced and recorded as the
/// provider and model that served the answer).
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class FallbackProviderTests
{
    private const string Refused = "http://127.0.0.1:9"; // nothing listens: connection refused

    private static readonly string PersonSchema = """
        {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}},"required":["name","age"],"additionalProperties":false}
        """;

    private static Dictionary<string, string?> Settings() => new()
    {
        ["Resilience:Retry:MaxAttempts"] = "1",
        ["Providers:openai:Destinations:0"] = Refused,
        ["Models:gpt-4o-mini:Fallbacks:0"] = "azure-gpt-4o",
    };

    [Fact]
    public async Task FallbackUnreachableToo_TheErrorAndTheLogNameTheProviderTriedLast()
    {
        var settings = Settings();
        settings["Providers:azure:Destinations:0"] = Refused;
        var log = Path.Combine(Path.GetTempPath(), "tg-it-fallback-" + Guid.NewGuid().ToString("N") + ".json");
        settings["Serilog:WriteTo:0:Name"] = "File";
        settings["Serilog:WriteTo:0:Args:path"] = log;
        settings["Serilog:WriteTo:0:Args:formatter"] = "Serilog.Formatting.Compact.CompactJsonFormatter, Serilog.Formatting.Compact";
        settings["Serilog:WriteTo:0:Args:flushToDiskInterval"] = "00:00:00.100";
        try
        {
            await using var server = await GatewayServer.StartAsync(settings);
            using var http = server.CreateClient();

            using var response = await http.PostAsync("/v1/chat/completions", Chat());

            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
            Assert.Equal("2", response.Headers.GetValues("x-tokengateway-attempts").Single());
            var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
            Assert.Equal("upstream_unavailable", error.GetProperty("code").GetString());
            Assert.Contains("'azure'", error.GetProperty("message").GetString(), StringComparison.Ordinal);
            var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
            Assert.Equal("azure", (await server.WaitForEventAsync(requestId)).GetProperty("provider").GetString());

            // Log event 2201 ("Forwarding to {Provider} failed …") names the fallback's provider.
            var line = await WaitForLogLineAsync(log, requestId, "Forwarding to");
            var provider = JsonDocument.Parse(line).RootElement.GetProperty("Provider").GetString();
            Assert.Equal("azure", provider);
        }
        finally
        {
            try
            {
                File.Delete(log);
            }
            catch (IOException)
            {
                // best effort
            }
        }
    }

    [Fact]
    public async Task FallbackAnswerBreaksTheSchema_TheRepairGoesToTheProviderAndModelThatAnswered()
    {
        await using var server = await GatewayServer.StartAsync(Settings());
        using var http = server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Chat(PersonSchema) };
        request.Headers.Add("x-simulator-fault", "invalid-json"); // the first answer breaks the schema, the repair's is valid

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("2", response.Headers.GetValues("x-tokengateway-attempts").Single()); // the refused primary, then azure
        Assert.Equal("1", response.Headers.GetValues("x-tokengateway-schema-repaired").Single());
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();

        // The fallback's own call went to azure's deployment of the fallback model …
        var served = server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId);
        Assert.NotNull(served);
        Assert.Contains("/deployments/azure-gpt-4o/", served.PathAndQuery, StringComparison.Ordinal);

        // … and so did the repair call, with azure's credential.
        var repair = server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId + "_repair1");
        Assert.NotNull(repair);
        Assert.Contains("/deployments/azure-gpt-4o/", repair.PathAndQuery, StringComparison.Ordinal);
        Assert.Equal(GatewayServer.ProviderKey, repair.Headers["api-key"]);

        // … and is recorded as that provider and model, priced as it.
        var repairEvent = await server.WaitForEventAsync(requestId + "_repair1");
        Assert.Equal("azure", repairEvent.GetProperty("provider").GetString());
        Assert.Equal("azure-gpt-4o", repairEvent.GetProperty("model").GetString());
        var input = repairEvent.GetProperty("inputTokens").GetInt32();
        var outputTokens = repairEvent.GetProperty("outputTokens").GetInt32();
        // azure-gpt-4o costs ~16× gpt-4o-mini per token (2.5/10 vs 0.15/0.6 USD per million): priced as the fallback.
        var miniPrice = (input * 0.15m + outputTokens * 0.6m) / 1_000_000m;
        Assert.True(repairEvent.GetProperty("costUsd").GetDecimal() > 10 * miniPrice, $"repair cost {repairEvent.GetProperty("costUsd").GetDecimal()} vs gpt-4o-mini's {miniPrice}");
        Assert.Equal("azure-gpt-4o", (await server.WaitForEventAsync(requestId)).GetProperty("model").GetString());
    }

    private static StringContent Chat(string? schema = null)
    {
        var body = new JsonObject
        {
            ["model"] = "gpt-4o-mini",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Describe a person." }),
        };
        if (schema is not null)
        {
            body["response_format"] = new JsonObject
            {
                ["type"] = "json_schema",
                ["json_schema"] = new JsonObject { ["name"] = "person", ["strict"] = true, ["schema"] = JsonNode.Parse(schema) },
            };
        }

        return new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
    }

    private static async Task<string> WaitForLogLineAsync(string path, string requestId, string text)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            if (File.Exists(path))
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(stream);
                while (await reader.ReadLineAsync() is { } line)
                {
                    if (line.Contains(requestId, StringComparison.Ordinal) && line.Contains(text, StringComparison.Ordinal))
                    {
                        return line;
                    }
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"No log line with '{text}' for {requestId} in {path}.");
            }

            await Task.Delay(100);
        }
    }
}
