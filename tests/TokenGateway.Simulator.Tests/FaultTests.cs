using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TokenGateway.Simulator.Tests;

public sealed class FaultTests : IAsyncLifetime
{
    private SimulatorHost _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorHost.StartAsync();

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    private static JsonObject Chat(bool stream = false) => new()
    {
        ["model"] = "gpt-4o-mini",
        ["stream"] = stream,
        ["stream_options"] = stream ? new JsonObject { ["include_usage"] = true } : null,
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
    };

    private static JsonObject Claude(bool stream = false) => new()
    {
        ["model"] = "claude-haiku-4-5",
        ["max_tokens"] = 100,
        ["stream"] = stream,
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
    };

    [Fact]
    public async Task Latency_NonStreaming_DelaysFirstByte()
    {
        var watch = Stopwatch.StartNew();
        await _sim.PostJsonAsync("/v1/chat/completions", Chat(), "latency=200ms");

        Assert.True(watch.ElapsedMilliseconds >= 190, $"took {watch.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task Latency_Streaming_AlsoDelaysBetweenEvents()
    {
        var watch = Stopwatch.StartNew();
        var events = await _sim.PostSseAsync("/v1/chat/completions", Chat(stream: true), "latency=20ms,output-tokens=5");

        // 20 ms before the first byte plus 20 ms after each of the 9 events.
        Assert.Equal(9, events.Count);
        Assert.True(watch.ElapsedMilliseconds >= 180, $"took {watch.ElapsedMilliseconds} ms");
    }

    [Theory]
    [InlineData("/v1/chat/completions", 429, true)]
    [InlineData("/v1/chat/completions", 503, true)]
    [InlineData("/v1/chat/completions", 500, false)]
    public async Task Status_OpenAIRoute_ReturnsStatusInOpenAIEnvelope(string path, int status, bool retryAfter)
    {
        using var response = await _sim.PostAsync(path, Chat(), $"status={status}");

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(retryAfter, response.Headers.RetryAfter is not null);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.NotNull(error["message"]);
        Assert.NotNull(error["type"]);
        Assert.True(error.AsObject().ContainsKey("param"));
        Assert.True(error.AsObject().ContainsKey("code"));
    }

    [Fact]
    public async Task Status_AnthropicRoute_ReturnsAnthropicEnvelope()
    {
        using var response = await _sim.PostAsync("/v1/messages", Claude(), "status=529");

        Assert.Equal(529, (int)response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("error", (string)body["type"]!);
        Assert.Equal("overloaded_error", (string)body["error"]!["type"]!);
    }

    [Fact]
    public async Task Reset_NonStreaming_AbortsMidBody()
    {
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            using var response = await _sim.PostAsync("/v1/chat/completions", Chat(), "reset", completion: HttpCompletionOption.ResponseHeadersRead);
            await response.Content.ReadAsStringAsync();
        });
    }

    [Fact]
    public async Task Reset_Streaming_AbortsAfterSomeEvents()
    {
        using var response = await _sim.PostAsync("/v1/chat/completions", Chat(stream: true), "reset", completion: HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var lines = 0;
        var ex = await Record.ExceptionAsync(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                Assert.NotEqual("data: [DONE]", line);
                lines++;
            }
        });

        Assert.NotNull(ex);
        Assert.True(lines > 0);
    }

    [Fact]
    public async Task Stall_Streaming_StopsSendingButKeepsConnectionOpen()
    {
        using var response = await _sim.PostAsync("/v1/chat/completions", Chat(stream: true), "stall", completion: HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var received = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(800));
        var ex = await Record.ExceptionAsync(async () =>
        {
            while (await reader.ReadLineAsync(cts.Token) is { } line)
            {
                Assert.NotEqual("data: [DONE]", line);
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    received++;
                }
            }
        });

        Assert.IsAssignableFrom<OperationCanceledException>(ex);
        Assert.True(received >= 2, $"received {received} events before the stall");
        Assert.True(received < 26);
    }

    [Fact]
    public async Task MalformedSse_Streaming_EmitsBrokenEventThenContinues()
    {
        using var response = await _sim.PostAsync("/v1/chat/completions", Chat(stream: true), "malformed-sse", completion: HttpCompletionOption.ResponseHeadersRead);
        var text = await response.Content.ReadAsStringAsync();

        var events = SseEvent.Parse(text);
        var broken = events.Count(e =>
        {
            try
            {
                JsonDocument.Parse(e.Data).Dispose();
                return false;
            }
            catch (JsonException)
            {
                return e.Data != "[DONE]";
            }
        });
        Assert.Equal(1, broken);
        Assert.Contains("this line is not a server-sent event", text, StringComparison.Ordinal);
        Assert.Equal("[DONE]", events[^1].Data);
        Assert.NotNull(events[^2].Json["usage"]);
    }

    [Fact]
    public async Task NoUsage_OpenAIStream_EndsWithoutUsage()
    {
        var events = await _sim.PostSseAsync("/v1/chat/completions", Chat(stream: true), "no-usage");

        Assert.Equal("[DONE]", events[^1].Data);
        Assert.All(events.SkipLast(1), e => Assert.Null(e.Json["usage"]));
        Assert.Equal("stop", (string)events[^2].Json["choices"]![0]!["finish_reason"]!);
    }

    [Fact]
    public async Task NoUsage_AnthropicStream_EndsWithoutUsage()
    {
        var events = await _sim.PostSseAsync("/v1/messages", Claude(stream: true), "no-usage");

        Assert.Equal("message_stop", events[^1].Event);
        Assert.All(events, e => Assert.DoesNotContain("\"usage\"", e.Data, StringComparison.Ordinal));
    }

    [Fact]
    public async Task NoUsage_ResponsesStream_CompletesWithNullUsage()
    {
        var events = await _sim.PostSseAsync("/v1/responses", new JsonObject { ["model"] = "gpt-4o", ["input"] = "x", ["stream"] = true }, "no-usage");

        Assert.Equal("response.completed", events[^1].Event);
        Assert.Null(events[^1].Json["response"]!["usage"]);
    }

    [Theory]
    [InlineData("explode")]
    [InlineData("latency=soon")]
    [InlineData("status=200")]
    [InlineData("output-tokens=-1")]
    public async Task UnknownFault_Returns400(string fault)
    {
        using var response = await _sim.PostAsync("/v1/chat/completions", Chat(), fault);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("x-simulator-fault", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Faults_Combined_AreAllApplied()
    {
        var watch = Stopwatch.StartNew();
        var result = await _sim.PostJsonAsync("/v1/chat/completions", Chat(), "latency=50ms, output-tokens=3");

        Assert.Equal(3, (int)result["usage"]!["completion_tokens"]!);
        Assert.True(watch.ElapsedMilliseconds >= 45);
    }

    [Fact]
    public async Task ClientDisconnect_MidStream_ServerStopsPromptly()
    {
        using var cts = new CancellationTokenSource();
        using var response = await _sim.PostAsync("/v1/chat/completions", Chat(stream: true), "latency=100ms,output-tokens=1000",
            completion: HttpCompletionOption.ResponseHeadersRead, cancellationToken: cts.Token);
        using var stream = await response.Content.ReadAsStreamAsync(cts.Token);
        var buffer = new byte[256];
        _ = await stream.ReadAsync(buffer, cts.Token);
        cts.Cancel();
        response.Dispose();

        // The server would take 100 s to finish; it must notice the disconnect and keep serving others promptly.
        var next = await _sim.PostJsonAsync("/v1/chat/completions", Chat());
        Assert.Equal(24, (int)next["usage"]!["completion_tokens"]!);
    }
}
