using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>/metrics exposes the gateway's instruments after traffic; traces nest the stages and reach the provider.</summary>
public sealed class TelemetryTests
{
    private const string ChatBody = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"telemetry probe\"}]}";

    [Fact]
    public async Task Metrics_AfterTraffic_ExposeGenAiAndGatewayInstruments()
    {
        await using var server = await GatewayServer.StartAsync();
        var (teamId, key) = await server.CreateTeamWithKeyAsync("metrics");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy",
            new { budget = new { usd = 5, period = "day", hard = true }, rateLimits = new { requestsPerMinute = 4 } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);

        for (var i = 0; i < 3; i++)
        {
            using var ok = await http.PostAsync("/v1/chat/completions", new StringContent(ChatBody, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using var streamed = await http.PostAsync("/v1/messages", new StringContent(
            "{\"model\":\"claude-haiku-4-5\",\"stream\":true,\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"stream\"}]}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, streamed.StatusCode);
        using var rejected = await http.PostAsync("/v1/chat/completions", new StringContent(ChatBody, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.TooManyRequests, rejected.StatusCode);

        var text = await ScrapeAsync(server, "tokengateway_rejections");

        Assert.Contains("gen_ai_client_token_usage", text, StringComparison.Ordinal);
        Assert.Contains("gen_ai_token_type=\"input\"", text, StringComparison.Ordinal);
        Assert.Contains("gen_ai_token_type=\"output\"", text, StringComparison.Ordinal);
        Assert.Contains("gen_ai_request_model=\"gpt-4o\"", text, StringComparison.Ordinal);
        Assert.Contains("gen_ai_provider_name=\"openai\"", text, StringComparison.Ordinal);
        Assert.Contains($"tokengateway_team=\"{teamId}\"", text, StringComparison.Ordinal);
        Assert.Contains("gen_ai_client_operation_duration_seconds", text, StringComparison.Ordinal);
        Assert.Contains("gen_ai_client_operation_time_to_first_chunk_seconds", text, StringComparison.Ordinal);
        Assert.Contains("tokengateway_cost_usd_total", text, StringComparison.Ordinal);
        Assert.Contains("tokengateway_requests_active", text, StringComparison.Ordinal);
        Assert.Contains("tokengateway_error_code=\"rate_limited\"", text, StringComparison.Ordinal);
        Assert.Contains("tokengateway_budget_utilization", text, StringComparison.Ordinal);
        Assert.Contains("tokengateway_ledger_queue_depth", text, StringComparison.Ordinal);
        Assert.Contains("tokengateway_ledger_spool_depth", text, StringComparison.Ordinal);
        Assert.DoesNotContain("req_", text, StringComparison.Ordinal); // no request ids as labels
    }

    [Fact]
    public async Task Traces_ProxiedRequest_NestStagesAndPropagateTraceContextUpstream()
    {
        var stopped = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is "TokenGateway" or "System.Net.Http" or "Microsoft.AspNetCore" or "Yarp.ReverseProxy",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Add,
        };
        ActivitySource.AddActivityListener(listener);
        await using var server = await GatewayServer.StartAsync();
        using var http = server.CreateClient();

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(ChatBody, Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        await server.WaitForEventAsync(requestId);

        var request = stopped.Single(a => a.OperationName == "tokengateway.request" && (a.GetTagItem("tokengateway.request_id") as string) == requestId);
        var children = stopped.Where(a => a.ParentSpanId == request.SpanId).Select(a => a.OperationName).ToList();
        Assert.Contains("tokengateway.admission", children);
        Assert.Contains("tokengateway.optimization", children);
        Assert.Contains("tokengateway.upstream", children);
        Assert.Equal("gpt-4o", request.GetTagItem("gen_ai.request.model"));
        Assert.Equal("openai", request.GetTagItem("gen_ai.provider.name"));
        Assert.NotNull(request.GetTagItem("gen_ai.usage.output_tokens"));

        var received = server.Simulator.Recorder.Snapshot().Single(r => r.GetHeader("x-tokengateway-request-id") == requestId);
        var traceparent = received.GetHeader("traceparent");
        Assert.NotNull(traceparent);
        var parts = traceparent!.Split('-');
        Assert.Equal(request.TraceId.ToHexString(), parts[1]);
        var upstream = stopped.Single(a => a.OperationName == "tokengateway.upstream" && a.ParentSpanId == request.SpanId);
        var parent = stopped.Single(a => a.SpanId.ToHexString() == parts[2]);
        Assert.True(IsDescendant(parent, upstream, stopped), "the span that called the provider nests under tokengateway.upstream");
    }

    internal static async Task<string> ScrapeAsync(GatewayServer server, string mustContain)
    {
        // The exporter caches a scrape briefly; poll until the last recorded instrument shows up.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var text = await server.Admin.GetStringAsync("/metrics"); // /metrics on the API port needs the admin key (issue #12)
            if (text.Contains(mustContain, StringComparison.Ordinal) || DateTime.UtcNow > deadline)
            {
                return text;
            }

            await Task.Delay(200);
        }
    }

    private static bool IsDescendant(Activity candidate, Activity ancestor, IEnumerable<Activity> all)
    {
        var bySpan = all.GroupBy(a => a.SpanId).ToDictionary(g => g.Key, g => g.First());
        var current = candidate;
        while (current is not null)
        {
            if (current.SpanId == ancestor.SpanId)
            {
                return true;
            }

            current = bySpan.GetValueOrDefault(current.ParentSpanId);
        }

        return false;
    }
}
