using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using TokenGateway.Hosting;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// What bounds one request's spend and life (issue #12 item 6): every structured-output repair call is admitted
/// against the team's budget before it is sent, and a total request deadline shorter than the reservation TTL cuts a
/// stalled upstream and settles the reservation.
/// </summary>
public sealed class RequestBoundsTests
{
    private const decimal InputPrice = 0.15m;  // gpt-4o-mini, USD per million tokens (catalog.json)
    private const decimal OutputPrice = 0.6m;

    private static StringContent StructuredBody(bool stream = false) => new(JsonSerializer.Serialize(new
    {
        model = "gpt-4o-mini",
        max_tokens = 100,
        stream,
        messages = new[] { new { role = "user", content = "Describe a person." } },
        response_format = new
        {
            type = "json_schema",
            json_schema = new
            {
                name = "person",
                strict = true,
                schema = JsonDocument.Parse("""{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}""").RootElement,
            },
        },
    }), Encoding.UTF8, "application/json");

    private static async Task<HttpResponseMessage> PostAsync(HttpClient http, HttpContent body, string fault, HttpCompletionOption option = HttpCompletionOption.ResponseContentRead)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = body };
        request.Headers.Add("x-simulator-fault", fault);
        return await http.SendAsync(request, option);
    }

    [Fact]
    public async Task Repair_HardBudgetCannotAffordIt_RefusedBeforeSending()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Budgets:LowerMaxTokens"] = "false" });

        // Probe with an unlimited team: what the request and its repair reserve (input tokens, max_tokens sent).
        using var probeHttp = server.CreateClient();
        using var probe = await PostAsync(probeHttp, StructuredBody(), "invalid-json");
        Assert.Equal(HttpStatusCode.OK, probe.StatusCode);
        var probeId = probe.Headers.GetValues("x-tokengateway-request-id").Single();
        var primary = await server.WaitForEventAsync(probeId);
        var repair = await server.WaitForEventAsync(probeId + "_repair1");
        using var repairBody = JsonDocument.Parse(server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", probeId + "_repair1")!.Body);
        var repairMax = repairBody.RootElement.TryGetProperty("max_completion_tokens", out var m) ? m.GetInt32() : repairBody.RootElement.GetProperty("max_tokens").GetInt32();
        var reservePrimary = (primary.GetProperty("inputTokensReceived").GetInt32() * InputPrice + 100 * OutputPrice) / 1_000_000m;
        var reserveRepair = (repair.GetProperty("inputTokensSent").GetInt32() * InputPrice + repairMax * OutputPrice) / 1_000_000m;

        // A hard budget that admits the request but leaves less than the repair's reservation.
        var budget = Math.Round(reservePrimary + reserveRepair / 2, 8);
        var (teamId, key) = await server.CreateTeamWithKeyAsync("repair-budget");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = budget, period = "day", hard = true } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);

        using var response = await PostAsync(http, StructuredBody(), "invalid-json");

        await ErrorHandlingTests.AssertOpenAIErrorAsync(response, HttpStatusCode.BadGateway, "schema_validation_failed");
        Assert.Equal("budget_exceeded", response.Headers.GetValues("x-tokengateway-schema-repair-refused").Single());
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        Assert.NotNull(server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId));
        Assert.Null(server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId + "_repair1"));
        await server.WaitForEventAsync(requestId);
        var state = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
        Assert.Equal(0m, state.GetProperty("reservedUsd").GetDecimal());
        Assert.True(state.GetProperty("spentUsd").GetDecimal() <= budget);
    }

    [Fact]
    public async Task Repair_BudgetCanAffordIt_AdmittedAndSettledOnItsOwnReservation()
    {
        await using var server = await GatewayServer.StartAsync();
        var (teamId, key) = await server.CreateTeamWithKeyAsync("repair-ok");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = 5, period = "day", hard = true } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);

        using var response = await PostAsync(http, StructuredBody(), "invalid-json");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        var original = await server.WaitForEventAsync(requestId);
        var repair = await server.WaitForEventAsync(requestId + "_repair1");
        var state = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
        Assert.Equal(0m, state.GetProperty("reservedUsd").GetDecimal());
        Assert.Equal(original.GetProperty("costUsd").GetDecimal() + repair.GetProperty("costUsd").GetDecimal(), state.GetProperty("spentUsd").GetDecimal(), 6);
    }

    [Fact]
    public async Task StalledStream_CutAtRequestDeadline_ReservationSettledAndEventRecorded()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:RequestDeadline"] = "00:00:02",
            ["Gateway:UpstreamIdleTimeout"] = "00:01:00",
        });
        var (teamId, key) = await server.CreateTeamWithKeyAsync("deadline");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = 5, period = "day", hard = true } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);
        http.Timeout = TimeSpan.FromSeconds(30);
        var body = new StringContent("""{"model":"gpt-4o-mini","stream":true,"max_tokens":200,"messages":[{"role":"user","content":"Tell me a long story."}]}""", Encoding.UTF8, "application/json");
        var clock = Stopwatch.StartNew();

        using var response = await PostAsync(http, body, "stall", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        await using var stream = await response.Content.ReadAsStreamAsync();
        var cut = await Record.ExceptionAsync(async () =>
        {
            var buffer = new byte[4096];
            while (await stream.ReadAsync(buffer) > 0)
            {
            }
        });
        clock.Stop();

        Assert.NotNull(cut); // an abnormal end, never a clean one
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(15));
        var e = await server.WaitForEventAsync(requestId);
        Assert.Equal("upstream_error", e.GetProperty("status").GetString());
        Assert.Equal("request_deadline_exceeded", e.GetProperty("errorCode").GetString());
        Assert.True(e.GetProperty("estimated").GetBoolean());
        Assert.True(e.GetProperty("outputTokens").GetInt32() > 0); // what was delivered is billed
        var state = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
        Assert.Equal(0m, state.GetProperty("reservedUsd").GetDecimal());
        Assert.Equal(e.GetProperty("costUsd").GetDecimal(), state.GetProperty("spentUsd").GetDecimal(), 6);
    }

    [Theory]
    [InlineData("00:20:00", "00:20:00")]
    [InlineData("00:30:00", "00:20:00")]
    [InlineData("00:00:00", "00:20:00")]
    public async Task RequestDeadline_NotShorterThanReservationTtl_StartFails(string deadline, string ttl)
    {
        var builder = GatewayApplication.CreateBuilder(["--urls", "http://127.0.0.1:0"]);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gateway:RequestDeadline"] = deadline,
            ["Budgets:ReservationTtl"] = ttl,
            ["Gateway:Simulator"] = "Always",
            ["Storage:DataDirectory"] = Path.Combine(Path.GetTempPath(), "tg-it-" + Guid.NewGuid().ToString("N")),
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var app = GatewayApplication.Build(builder);
            await app.StartAsync();
        });

        Assert.Contains("RequestDeadline", ex.Message, StringComparison.Ordinal);
    }
}
