using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TokenGateway.Core.Metering;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// Canary test: traffic with a canary provider key and canary virtual keys, then neither key — nor any 8-character
/// piece of one — may appear in logs, /metrics, traces, error bodies, response headers or the data directory's bytes.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class SecretRedactionTests
{
    private const string ProviderKeyEnv = "TG_IT_CANARY_PROVIDER_KEY";

    [Fact]
    public async Task Traffic_WithCanaryKeys_NoKeyFragmentInAnyOutput()
    {
        var providerCanary = "sk-canaryPROV-" + Guid.NewGuid().ToString("N");
        var bogusVirtualCanary = "tg-canaryVIRT" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(ProviderKeyEnv, providerCanary);
        var loginResponse = "";
        var activities = new ConcurrentQueue<string>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = _ => true,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => activities.Enqueue(Describe(a)),
        };
        ActivitySource.AddActivityListener(listener);

        await using var simulator = await SimulatorServer.StartAsync(providerCanary);
        var logFile = Path.Combine(Path.GetTempPath(), "tg-canary-" + Guid.NewGuid().ToString("N") + ".json");
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:JsonLogs"] = "true",
            ["Serilog:MinimumLevel:Default"] = "Verbose",
            ["Serilog:WriteTo:0:Name"] = "File",
            ["Serilog:WriteTo:0:Args:path"] = logFile,
            ["Serilog:WriteTo:0:Args:formatter"] = "Serilog.Formatting.Compact.CompactJsonFormatter, Serilog.Formatting.Compact",
            ["Serilog:WriteTo:0:Args:flushToDiskInterval"] = "00:00:00.100",
            ["Providers:openai:Destinations:0"] = simulator.Address,
            ["Providers:openai:ApiKeyEnv"] = ProviderKeyEnv,
            ["Providers:anthropic:Destinations:0"] = simulator.Address,
            ["Providers:anthropic:ApiKeyEnv"] = ProviderKeyEnv,
        });

        var responses = await TrafficGenerator.SendMixAsync(server, server.VirtualKey);
        using (var bogus = new HttpClient { BaseAddress = new Uri(server.Address) })
        {
            bogus.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bogusVirtualCanary);
            responses.Add(await bogus.PostAsync("/v1/chat/completions", new StringContent("{\"model\":\"gpt-4o\",\"messages\":[]}", Encoding.UTF8, "application/json")));
            bogus.DefaultRequestHeaders.Authorization = null;
            bogus.DefaultRequestHeaders.Add("x-api-key", bogusVirtualCanary);
            responses.Add(await bogus.PostAsync("/v1/messages", new StringContent("{\"model\":\"claude-haiku-4-5\",\"max_tokens\":5,\"messages\":[]}", Encoding.UTF8, "application/json")));
            responses.Add(await bogus.GetAsync("/admin/usage"));
        }

        Assert.Contains(simulator.Recorder.Snapshot(), r => r.Headers.Values.Any(v => v.Contains(providerCanary, StringComparison.Ordinal))); // the key did go upstream
        var metrics = await TelemetryTests.ScrapeAsync(server, "gen_ai_client_token_usage");
        await server.Services.GetRequiredService<IUsageLedger>().FlushAsync(CancellationToken.None);
        var dataDirectory = server.DataDirectory;
        using (var dashboard = new HttpClient { BaseAddress = new Uri(server.Address) })
        {
            // A dashboard login too: the session cookie and the key ring must not carry the admin key.
            var login = await dashboard.PostAsync("/dashboard/login", new FormUrlEncodedContent([new("key", GatewayServer.AdminKey)]));
            loginResponse = login.ToString();
        }

        var outputs = new Dictionary<string, byte[]>
        {
            ["metrics"] = Encoding.UTF8.GetBytes(metrics),
            ["traces"] = Encoding.UTF8.GetBytes(string.Join('\n', activities)),
            ["dashboard login"] = Encoding.UTF8.GetBytes(loginResponse),
        };
        for (var i = 0; i < responses.Count; i++)
        {
            var r = responses[i];
            outputs[$"response {i} ({(int)r.StatusCode})"] = Encoding.UTF8.GetBytes(r + "\n" + await r.Content.ReadAsStringAsync());
        }

        // The database, its WAL/SHM, the ledger journal and the Data Protection key ring, as bytes on disk.
        foreach (var file in Directory.EnumerateFiles(dataDirectory, "*", SearchOption.AllDirectories))
        {
            outputs["data: " + Path.GetFileName(file)] = ReadShared(file);
        }

        await Task.Delay(1000); // the file sink flushes every 100 ms
        outputs["logs"] = ReadShared(logFile);

        Assert.Contains(outputs.Keys, k => k.EndsWith(".db", StringComparison.Ordinal));
        AssertCompletionEventFields(Encoding.UTF8.GetString(outputs["logs"]));
        foreach (var (name, bytes) in outputs)
        {
            foreach (var secret in new[] { providerCanary, server.VirtualKey, bogusVirtualCanary })
            {
                AssertNoFragment(name, bytes, secret);
            }

            // The fixture's admin key is a readable constant (its fragments match ordinary words): whole key only.
            Assert.DoesNotContain(GatewayServer.AdminKey, Encoding.UTF8.GetString(bytes), StringComparison.Ordinal);
        }

        File.Delete(logFile); // Serilog keeps it open until the server is disposed; unlinking is fine on Linux
    }

    private static byte[] ReadShared(string path)
    {
        if (new FileInfo(path).Length == 0)
        {
            return []; // e.g. the journal's lock file, held exclusively while the gateway runs
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static void AssertNoFragment(string name, byte[] bytes, string secret)
    {
        // Text as UTF-8 and as UTF-16 (SQLite and .NET strings may hold either).
        var haystacks = new[] { Encoding.UTF8.GetString(bytes), Encoding.Unicode.GetString(bytes), Encoding.Unicode.GetString(bytes.AsSpan(Math.Min(1, bytes.Length))) };
        for (var i = 0; i + 8 <= secret.Length; i++)
        {
            var fragment = secret.Substring(i, 8);
            foreach (var text in haystacks)
            {
                var at = text.IndexOf(fragment, StringComparison.Ordinal);
                Assert.False(at >= 0, $"'{name}' contains a fragment of a secret (offset {i}, length {secret.Length}) near: "
                    + (at >= 0 ? text.Substring(Math.Max(0, at - 120), Math.Min(120, at)) : ""));
            }
        }
    }

    private static void AssertCompletionEventFields(string logs)
    {
        var completions = logs.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(e => e.TryGetProperty("RequestPath", out var p) && p.GetString() == "/v1/chat/completions" && e.TryGetProperty("OutputTokens", out _))
            .ToList();
        Assert.NotEmpty(completions);
        var ok = completions.First(e => e.GetProperty("StatusCode").GetInt32() == 200);
        foreach (var field in new[] { "TeamId", "Model", "Provider", "InputTokensReceived", "InputTokensSent", "OutputTokens", "CostUsd", "TokensSaved", "UsageStatus", "Elapsed", "DurationMs", "RequestId" })
        {
            Assert.True(ok.TryGetProperty(field, out _), $"The request-completion event lacks {field}.");
        }
    }

    private static string Describe(Activity a)
    {
        var text = new StringBuilder().Append(a.Source.Name).Append(' ').Append(a.OperationName).Append(' ').Append(a.DisplayName);
        foreach (var (k, v) in a.TagObjects)
        {
            text.Append(' ').Append(k).Append('=').Append(v);
        }

        foreach (var e in a.Events)
        {
            text.Append(" event ").Append(e.Name);
            foreach (var (k, v) in e.Tags)
            {
                text.Append(' ').Append(k).Append('=').Append(v);
            }
        }

        foreach (var (k, v) in a.Baggage)
        {
            text.Append(" baggage ").Append(k).Append('=').Append(v);
        }

        return text.ToString();
    }
}
