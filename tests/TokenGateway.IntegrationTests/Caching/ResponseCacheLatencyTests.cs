using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using TokenGateway.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace TokenGateway.IntegrationTests.Caching;

/// <summary>
/// A bounded measurement (docs/caching.md): the same gateway answers N distinct prompts as misses (the simulator
/// generates each answer) and then the same N prompts as hits; a hit must be faster than the simulator answers a miss.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class ResponseCacheLatencyTests(ITestOutputHelper output)
{
    private const int Requests = 60;

    [Fact]
    public async Task Hit_IsServedFasterThanTheSimulatorAnswersAMiss()
    {
        await using var server = await GatewayServer.StartAsync();
        var (teamId, key) = await server.CreateTeamWithKeyAsync("latency");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { cache = new { enabled = true } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);
        var prompts = Enumerable.Range(0, Requests).Select(i => $"Explain item {i} of the maintenance checklist. #{Guid.NewGuid():N}").ToArray();

        foreach (var warmup in new[] { "warm-up one", "warm-up two" })
        {
            await SendAsync(http, warmup, stream: false, "miss");
        }

        var misses = new List<double>();
        var hits = new List<double>();
        var streamMisses = new List<double>();
        var streamHits = new List<double>();
        foreach (var prompt in prompts)
        {
            misses.Add(await SendAsync(http, prompt, stream: false, "miss"));
        }

        foreach (var prompt in prompts)
        {
            hits.Add(await SendAsync(http, prompt, stream: false, "hit"));
        }

        foreach (var prompt in prompts)
        {
            streamMisses.Add(await SendAsync(http, "stream " + prompt, stream: true, "miss"));
        }

        foreach (var prompt in prompts)
        {
            streamHits.Add(await SendAsync(http, "stream " + prompt, stream: true, "hit"));
        }

        output.WriteLine($"JSON   miss p50 {P(misses, 0.5):0.00} ms p90 {P(misses, 0.9):0.00} ms | hit p50 {P(hits, 0.5):0.00} ms p90 {P(hits, 0.9):0.00} ms");
        output.WriteLine($"stream miss p50 {P(streamMisses, 0.5):0.00} ms p90 {P(streamMisses, 0.9):0.00} ms | hit p50 {P(streamHits, 0.5):0.00} ms p90 {P(streamHits, 0.9):0.00} ms");
        Assert.True(P(hits, 0.5) < P(misses, 0.5), $"hit p50 {P(hits, 0.5):0.00} ms vs miss p50 {P(misses, 0.5):0.00} ms");
        Assert.True(P(streamHits, 0.5) < P(streamMisses, 0.5), $"stream hit p50 {P(streamHits, 0.5):0.00} ms vs miss p50 {P(streamMisses, 0.5):0.00} ms");
    }

    private static async Task<double> SendAsync(HttpClient http, string prompt, bool stream, string expected)
    {
        var body = JsonSerializer.Serialize(new { model = "gpt-4o-mini", stream, max_tokens = 200, messages = new[] { new { role = "user", content = prompt } } });
        var started = Stopwatch.GetTimestamp();
        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        await response.Content.ReadAsByteArrayAsync();
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        response.EnsureSuccessStatusCode();
        Assert.Equal(expected, response.Headers.GetValues("x-tokengateway-cache").Single());
        return elapsed;
    }

    private static double P(List<double> values, double quantile)
    {
        var sorted = values.Order().ToArray();
        return sorted[(int)Math.Min(sorted.Length - 1, Math.Floor(quantile * sorted.Length))];
    }
}
