using System.Net;
using System.Text.Json.Nodes;

namespace TokenGateway.Simulator.Tests;

/// <summary>Fault scoping (scenario/first, model), reset-after, stall-after, and the providers' rate-limit headers.</summary>
public sealed class ScopedFaultTests : IAsyncLifetime
{
    private SimulatorHost _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorHost.StartAsync();

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    private static JsonObject Chat(string model = "gpt-4o-mini", bool stream = false) => new()
    {
        ["model"] = model,
        ["stream"] = stream,
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
    };

    [Fact]
    public async Task ScenarioFirst_FaultFiresOnTheFirstNRequestsOnly()
    {
        var statuses = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await _sim.PostAsync("/v1/chat/completions", Chat(), "status=503,scenario=twice,first=2");
            statuses.Add((int)response.StatusCode);
        }

        Assert.Equal([503, 503, 200, 200], statuses);
    }

    [Fact]
    public async Task Scenario_CountsAreKeptPerScenarioId()
    {
        using var a = await _sim.PostAsync("/v1/chat/completions", Chat(), "status=500,scenario=a,first=1");
        using var b = await _sim.PostAsync("/v1/chat/completions", Chat(), "status=500,scenario=b,first=1");
        using var a2 = await _sim.PostAsync("/v1/chat/completions", Chat(), "status=500,scenario=a,first=1");

        Assert.Equal(HttpStatusCode.InternalServerError, a.StatusCode);
        Assert.Equal(HttpStatusCode.InternalServerError, b.StatusCode);
        Assert.Equal(HttpStatusCode.OK, a2.StatusCode);
    }

    [Fact]
    public async Task First_WithoutScenario_IsRefused()
    {
        using var response = await _sim.PostAsync("/v1/chat/completions", Chat(), "status=503,first=2");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("scenario", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Model_FaultFiresOnlyForThatModel()
    {
        using var other = await _sim.PostAsync("/v1/chat/completions", Chat("gpt-4o-mini"), "status=503,model=gpt-4o");
        using var target = await _sim.PostAsync("/v1/chat/completions", Chat("gpt-4o"), "status=503,model=gpt-4o");

        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, target.StatusCode);
    }

    [Fact]
    public async Task ResetAfter_CutsTheStreamAfterExactlyNEvents()
    {
        using var response = await _sim.PostAsync("/v1/chat/completions", Chat(stream: true), "reset-after=2,output-tokens=20",
            completion: HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var dataLines = 0;
        var ex = await Record.ExceptionAsync(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                Assert.NotEqual("data: [DONE]", line);
                dataLines += line.StartsWith("data: ", StringComparison.Ordinal) ? 1 : 0;
            }
        });

        Assert.NotNull(ex); // an abnormal end, never a clean one
        Assert.Equal(2, dataLines);
    }

    [Fact]
    public async Task StallAfter_StopsTheStreamAfterExactlyNEventsAndHoldsTheConnection()
    {
        using var response = await _sim.PostAsync("/v1/chat/completions", Chat(stream: true), "stall-after=3,output-tokens=20",
            completion: HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var dataLines = 0;
        using var silence = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var ex = await Record.ExceptionAsync(async () =>
        {
            while (await reader.ReadLineAsync(silence.Token) is { } line)
            {
                dataLines += line.StartsWith("data: ", StringComparison.Ordinal) ? 1 : 0;
            }
        });

        Assert.IsAssignableFrom<OperationCanceledException>(ex); // still open, silent: only our own timeout ended the read
        Assert.Equal(3, dataLines);
    }

    [Fact]
    public async Task RateLimitHeaders_OpenAI_RemainingDropsWithEachRequest()
    {
        using var first = await _sim.PostAsync("/v1/chat/completions", Chat());
        using var second = await _sim.PostAsync("/v1/chat/completions", Chat());

        var limit = long.Parse(first.Headers.GetValues("x-ratelimit-limit-requests").Single());
        var r1 = long.Parse(first.Headers.GetValues("x-ratelimit-remaining-requests").Single());
        var r2 = long.Parse(second.Headers.GetValues("x-ratelimit-remaining-requests").Single());
        var t1 = long.Parse(first.Headers.GetValues("x-ratelimit-remaining-tokens").Single());
        var t2 = long.Parse(second.Headers.GetValues("x-ratelimit-remaining-tokens").Single());
        Assert.Equal(limit - 1, r1);
        Assert.Equal(r1 - 1, r2);
        Assert.True(t2 < t1, $"tokens remaining {t1} then {t2}");
        Assert.EndsWith("s", first.Headers.GetValues("x-ratelimit-reset-tokens").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RateLimitHeaders_Anthropic_AlsoOnErrors()
    {
        var body = new JsonObject
        {
            ["model"] = "claude-haiku-4-5",
            ["max_tokens"] = 50,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
        };
        using var ok = await _sim.PostAsync("/v1/messages", body);
        using var failed = await _sim.PostAsync("/v1/messages", body, "status=529");

        Assert.Equal((HttpStatusCode)529, failed.StatusCode);
        var r1 = long.Parse(ok.Headers.GetValues("anthropic-ratelimit-requests-remaining").Single());
        var r2 = long.Parse(failed.Headers.GetValues("anthropic-ratelimit-requests-remaining").Single());
        Assert.Equal(r1 - 1, r2);
        Assert.True(DateTimeOffset.TryParse(ok.Headers.GetValues("anthropic-ratelimit-tokens-reset").Single(), out _));
    }
}
