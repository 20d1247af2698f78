using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Anthropic;
using Microsoft.Extensions.DependencyInjection;
using Anthropic.Models.Messages;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Responses;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Resilience;

/// <summary>
/// Issue #13, failure after the first byte: a stream cut mid-answer ends with the dialect's stream error event and an
/// abnormal end (never a clean <c>[DONE]</c>/<c>message_stop</c>) so every official SDK throws; with the team's
/// <c>continueStreams</c>, an Anthropic stream is continued into one well-formed message whose usage adds up.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class StreamFailureTests
{
    private const string Fault = ResilienceTestSettings.Fault;

    private static Dictionary<string, string?> Settings(int maxAttempts = 3) => ResilienceTestSettings.Retries(maxAttempts);

    private static string Scenario() => ResilienceTestSettings.Scenario();

    [Fact]
    public async Task ChatCompletionsStream_CutMidStream_SdkThrowsAndTheStreamEndsWithTheErrorEvent()
    {
        await using var server = await GatewayServer.StartAsync(Settings());
        var capture = new CaptureHandler(Fault, "reset-after=3");
        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(server.VirtualKey), new OpenAIClientOptions
        {
            Endpoint = server.OpenAIEndpoint,
            RetryPolicy = new ClientRetryPolicy(0),
            Transport = new HttpClientPipelineTransport(new HttpClient(capture)),
        });

        var text = new StringBuilder();
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("tell me a story")]))
            {
                foreach (var part in update.ContentUpdate)
                {
                    text.Append(part.Text);
                }
            }
        });

        var requestId = capture.RequestId!;
        var raw = await ReadRawAsync(server, "/v1/chat/completions", "reset-after=3", new
        {
            model = "gpt-4o-mini", stream = true, messages = new[] { new { role = "user", content = "tell me a story" } },
        }, bearer: true);
        Assert.Contains("data: {\"error\":{\"message\":", raw.Body, StringComparison.Ordinal);
        Assert.Contains("\"code\":\"upstream_stream_interrupted\"", raw.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("[DONE]", raw.Body, StringComparison.Ordinal);
        Assert.True(raw.EndedAbnormally, "the connection must end abnormally, not with a clean chunked terminator");

        var billed = await server.WaitForEventAsync(requestId);
        Assert.Equal("upstream_error", billed.GetProperty("status").GetString());
        Assert.Equal("upstream_stream_interrupted", billed.GetProperty("errorCode").GetString());
        Assert.True(billed.GetProperty("estimated").GetBoolean()); // billed for what was delivered
    }

    [Fact]
    public async Task ResponsesStream_CutMidStream_SdkThrowsAndTheStreamEndsWithTheErrorEvent()
    {
        await using var server = await GatewayServer.StartAsync(Settings());
        var capture = new CaptureHandler(Fault, "reset-after=4");
#pragma warning disable OPENAI001 // Responses API surface is marked experimental in the SDK
        var client = new ResponsesClient(new ApiKeyCredential(server.VirtualKey), new ResponsesClientOptions
        {
            Endpoint = server.OpenAIEndpoint,
            RetryPolicy = new ClientRetryPolicy(0),
            Transport = new HttpClientPipelineTransport(new HttpClient(capture)),
        });

        var completed = false;
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await foreach (var update in await client.CreateResponseStreamingAsync(
                new CreateResponseOptions("gpt-4.1-mini", [ResponseItem.CreateUserMessageItem("Stream please")]) { StreamingEnabled = true }))
            {
                completed |= update is StreamingResponseCompletedUpdate;
            }
        });
#pragma warning restore OPENAI001

        Assert.False(completed);
        var raw = await ReadRawAsync(server, "/v1/responses", "reset-after=4", new { model = "gpt-4.1-mini", stream = true, input = "Stream please" }, bearer: true);
        Assert.Contains("event: error\ndata: {\"type\":\"error\",\"code\":\"upstream_stream_interrupted\"", raw.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("response.completed", raw.Body, StringComparison.Ordinal);
        Assert.True(raw.EndedAbnormally);
        var billed = await server.WaitForEventAsync(capture.RequestId!);
        Assert.Equal("upstream_stream_interrupted", billed.GetProperty("errorCode").GetString());
    }

    [Fact]
    public async Task MessagesStream_CutMidStream_AnthropicSdkThrowsAndTheStreamEndsWithTheErrorEvent()
    {
        await using var server = await GatewayServer.StartAsync(Settings());
        var capture = new CaptureHandler(Fault, "reset-after=5");
        var client = Anthropic(server, capture);

        var events = new List<string>();
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await foreach (var e in client.Messages.CreateStreaming(Params("tell me a story")))
            {
                events.Add(e.Json.GetProperty("type").GetString()!);
            }
        });

        Assert.DoesNotContain("message_stop", events);
        var raw = await ReadRawAsync(server, "/v1/messages", "reset-after=5", new
        {
            model = "claude-sonnet-4-5", max_tokens = 200, stream = true, messages = new[] { new { role = "user", content = "tell me a story" } },
        }, bearer: false);
        Assert.Contains("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\"", raw.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("message_stop", raw.Body, StringComparison.Ordinal);
        Assert.True(raw.EndedAbnormally);
        var billed = await server.WaitForEventAsync(capture.RequestId!);
        Assert.Equal("upstream_stream_interrupted", billed.GetProperty("errorCode").GetString());
    }

    [Fact]
    public async Task MessagesStream_CutWithContinueStreams_SdkAccumulatesOneMessageWhoseUsageAddsUp()
    {
        await using var server = await GatewayServer.StartAsync(Settings());
        var put = await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy", new { resilience = new { continueStreams = true } });
        put.EnsureSuccessStatusCode();
        var scenario = Scenario();
        var capture = new CaptureHandler(Fault, $"scenario={scenario},first=1,reset-after=6");
        var client = Anthropic(server, capture);

        var events = new List<RawMessageStreamEvent>();
        await foreach (var e in client.Messages.CreateStreaming(Params("tell me a story")))
        {
            events.Add(e);
        }

        // One well-formed message: one message_start, one message_stop, content block indices in order.
        var types = events.Select(e => e.Json.GetProperty("type").GetString()).ToList();
        Assert.Equal(1, types.Count(t => t == "message_start"));
        Assert.Equal(1, types.Count(t => t == "message_stop"));
        Assert.Equal("message_stop", types[^1]);
        var starts = events.Where(e => e.Json.GetProperty("type").GetString() == "content_block_start").Select(e => e.Json.GetProperty("index").GetInt32()).ToList();
        Assert.Equal(Enumerable.Range(0, starts.Count), starts);
        Assert.All(events.Where(e => e.Json.GetProperty("type").GetString() is "content_block_delta" or "content_block_stop"),
            e => Assert.InRange(e.Json.GetProperty("index").GetInt32(), 0, starts.Count - 1));

        var text = string.Concat(events
            .Where(e => e.Json.GetProperty("type").GetString() == "content_block_delta")
            .Select(e => e.Json.GetProperty("delta").GetProperty("text").GetString()));

        // The continuation request carried the text delivered so far as an assistant prefill …
        var sent = server.Simulator.Recorder.FindAllByHeader(Fault, capture.HeaderValue);
        Assert.Equal(2, sent.Count);
        var continuation = JsonDocument.Parse(sent[1].Body).RootElement;
        var messages = continuation.GetProperty("messages");
        var prefill = messages[messages.GetArrayLength() - 1];
        Assert.Equal("assistant", prefill.GetProperty("role").GetString());
        var part1 = prefill.GetProperty("content").GetString()!;
        Assert.False(string.IsNullOrEmpty(part1));

        // … and the client's text is part 1 followed by exactly what the continuation request produces (the simulator is
        // deterministic for a body: the same bytes, sent again straight to it, stream the same answer).
        var part2 = await StreamTextDirectAsync(server, sent[1].Body);
        Assert.False(string.IsNullOrEmpty(part2));
        Assert.StartsWith(part1, text, StringComparison.Ordinal);
        Assert.EndsWith(part2, text, StringComparison.Ordinal);
        // Between them only the whitespace the prefill had to drop (Anthropic refuses a prefill ending in whitespace).
        Assert.True(string.IsNullOrWhiteSpace(text[part1.Length..^part2.Length]), $"text: {text}");

        // Metering: the cut attempt and the continuation are two events linked by parentRequestId; the final message_delta
        // reports their sum, and the team's budget counters equal the ledger.
        var requestId = capture.RequestId!;
        var own = await server.WaitForEventAsync(requestId);
        var cut = await server.WaitForEventAsync(requestId + "_attempt1");
        Assert.Equal("ok", own.GetProperty("status").GetString());
        Assert.Equal(requestId, cut.GetProperty("parentRequestId").GetString());
        Assert.Equal("upstream_stream_interrupted", cut.GetProperty("errorCode").GetString());
        var cutOutput = cut.GetProperty("outputTokens").GetInt32();
        var ownOutput = own.GetProperty("outputTokens").GetInt32();
        Assert.True(cutOutput > 0 && ownOutput > 0, $"cut {cutOutput}, continuation {ownOutput}");
        var delta = events.Last(e => e.Json.GetProperty("type").GetString() == "message_delta").Json.GetProperty("usage");
        Assert.Equal(cutOutput + ownOutput, delta.GetProperty("output_tokens").GetInt32());
        Assert.Equal(cut.GetProperty("inputTokens").GetInt32() + own.GetProperty("inputTokens").GetInt32(), delta.GetProperty("input_tokens").GetInt32());

        var spent = cut.GetProperty("costUsd").GetDecimal() + own.GetProperty("costUsd").GetDecimal();
        var budget = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{server.TeamId}/budget");
        Assert.InRange(budget.GetProperty("spentUsd").GetDecimal(), spent - 0.000002m, spent + 0.000002m);
    }

    [Fact]
    public async Task MessagesStream_CutDuringAToolCall_IsNotContinuedAndEndsWithTheErrorEvent()
    {
        await using var server = await GatewayServer.StartAsync(Settings());
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy", new { resilience = new { continueStreams = true } })).EnsureSuccessStatusCode();
        var scenario = Scenario();

        var raw = await ReadRawAsync(server, "/v1/messages", $"scenario={scenario},first=1,reset-after=5", new
        {
            model = "claude-sonnet-4-5", max_tokens = 300, stream = true,
            messages = new[] { new { role = "user", content = "weather in Paris?" } },
            tools = new[] { new { name = "get_weather", description = "weather", input_schema = new { type = "object", properties = new { city = new { type = "string" } }, required = new[] { "city" } } } },
            tool_choice = new { type = "tool", name = "get_weather" },
        }, bearer: false);

        Assert.Contains("\"type\":\"tool_use\"", raw.Body, StringComparison.Ordinal);
        Assert.Contains("event: error\n", raw.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("message_stop", raw.Body, StringComparison.Ordinal);
        Assert.True(raw.EndedAbnormally);
        Assert.Single(server.Simulator.Recorder.FindAllByHeader(Fault, $"scenario={scenario},first=1,reset-after=5")); // not continued
    }

    [Fact]
    public async Task MessagesStream_ContinuedThenCutAgain_EachFailedAttemptCountsOnceOnTheBreakers()
    {
        // Three failures in the window open the breaker (ratio 1): the cut attempt and its cut continuation are two.
        var settings = Settings(maxAttempts: 2);
        settings["Resilience:CircuitBreaker:MinimumThroughput"] = "3";
        settings["Resilience:CircuitBreaker:FailureRatio"] = "1";
        settings["Resilience:CircuitBreaker:BreakDuration"] = "00:00:30";
        await using var server = await GatewayServer.StartAsync(settings);
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy", new { resilience = new { continueStreams = true } })).EnsureSuccessStatusCode();
        var fault = $"scenario={Scenario()},first=2,reset-after=6"; // the first attempt and its continuation are both cut

        var raw = await ReadRawAsync(server, "/v1/messages", fault, AnthropicStreamBody(), bearer: false);

        Assert.Contains("event: error\n", raw.Body, StringComparison.Ordinal); // attempts spent: the stream error
        Assert.True(raw.EndedAbnormally);
        Assert.Equal(2, server.Simulator.Recorder.FindAllByHeader(Fault, fault).Count);
        await server.WaitForEventAsync(raw.RequestId); // recorded after the request's attempts were (the client sees the abort first)
        var breakers = server.Services.GetRequiredService<TokenGateway.Resilience.CircuitBreakerRegistry>();
        Assert.Equal(Polly.CircuitBreaker.CircuitState.Closed, breakers.StateOf(Core.Resilience.CircuitScopes.Destination("anthropic-0")));

        // Two failed attempts, two failures: the next request is served (a third count would have opened the breaker).
        var next = await ReadRawAsync(server, "/v1/messages", "latency=1ms", AnthropicStreamBody(), bearer: false);
        Assert.Contains("message_stop", next.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChatStream_CutAfterItsFirstEvent_CountsAsOneFailureNotAsASuccessAndAFailure()
    {
        // Two failures of two attempts open the breaker (ratio 1); a cut counted as success + failure would not.
        var settings = Settings();
        settings["Resilience:CircuitBreaker:MinimumThroughput"] = "2";
        settings["Resilience:CircuitBreaker:FailureRatio"] = "1";
        settings["Resilience:CircuitBreaker:BreakDuration"] = "00:00:30";
        await using var server = await GatewayServer.StartAsync(settings);
        var body = new { model = "gpt-4o-mini", stream = true, messages = new[] { new { role = "user", content = "tell me a story" } } };
        for (var i = 0; i < 2; i++)
        {
            var cut = await ReadRawAsync(server, "/v1/chat/completions", "reset-after=2", body, bearer: true);
            Assert.True(cut.EndedAbnormally);
            await server.WaitForEventAsync(cut.RequestId); // recorded after the attempt's breakers were (the client sees the abort first)
        }

        var breakers = server.Services.GetRequiredService<TokenGateway.Resilience.CircuitBreakerRegistry>();
        Assert.Equal(Polly.CircuitBreaker.CircuitState.Open, breakers.StateOf(Core.Resilience.CircuitScopes.Destination("openai-0")));
        using var http = server.CreateClient();
        using var failFast = await http.PostAsJsonAsync("/v1/chat/completions", new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = "hi" } } });
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, failFast.StatusCode);
        Assert.Equal("0", failFast.Headers.GetValues("x-tokengateway-attempts").Single());
    }

    [Fact]
    public async Task MessagesStream_Continued_HeaderCountsAttemptsToTheFirstByte_StreamAndLedgerCarryTheFullCount()
    {
        await using var server = await GatewayServer.StartAsync(Settings());
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy", new { resilience = new { continueStreams = true } })).EnsureSuccessStatusCode();
        var fault = $"scenario={Scenario()},first=1,reset-after=6";

        var raw = await ReadRawAsync(server, "/v1/messages", fault, AnthropicStreamBody(), bearer: false);

        Assert.False(raw.EndedAbnormally);
        Assert.Equal("1", raw.Attempts); // sent with the headers, before the cut
        // The full count, in an SSE comment right before the one message_stop (every SSE parser skips comments).
        Assert.Contains(": x-tokengateway-attempts: 2\n\nevent: message_stop\n", raw.Body, StringComparison.Ordinal);

        // The ledger: the cut attempt's event (attempt 1) linked to the request, whose own event is attempt 2.
        var cut = await server.WaitForEventAsync(raw.RequestId + "_attempt1");
        Assert.Equal(raw.RequestId, cut.GetProperty("parentRequestId").GetString());
        Assert.Equal("initial", cut.GetProperty("attempt").GetString());
        Assert.Equal("upstream_stream_interrupted", cut.GetProperty("errorCode").GetString());
        Assert.Equal("ok", (await server.WaitForEventAsync(raw.RequestId)).GetProperty("status").GetString());
        using var none = await server.Admin.GetAsync($"/admin/usage/{raw.RequestId}_attempt2");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, none.StatusCode);
    }

    private static object AnthropicStreamBody() => new
    {
        model = "claude-sonnet-4-5", max_tokens = 300, stream = true,
        messages = new[] { new { role = "user", content = "tell me a long story" } },
    };

    private static MessageCreateParams Params(string prompt) => new()
    {
        Model = "claude-sonnet-4-5",
        MaxTokens = 400,
        Messages = [new UserMessageParam { Content = prompt }],
    };

    private static AnthropicClient Anthropic(GatewayServer server, CaptureHandler capture) => new()
    {
        ApiKey = server.VirtualKey,
        BaseUrl = server.Address.TrimEnd('/'),
        MaxRetries = 0,
        HttpClient = new HttpClient(capture),
    };

    /// <summary>Streams <paramref name="body"/> straight to the simulator and joins its text deltas.</summary>
    private static async Task<string> StreamTextDirectAsync(GatewayServer server, ReadOnlyMemory<byte> body)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, server.Simulator.Address + "v1/messages") { Content = new ReadOnlyMemoryContent(body) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        request.Headers.Add("x-api-key", GatewayServer.ProviderKey);
        request.Headers.Add("anthropic-version", "2023-06-01");
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var text = new StringBuilder();
        foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n'))
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal) && line.Contains("\"text_delta\"", StringComparison.Ordinal))
            {
                text.Append(JsonDocument.Parse(line[6..]).RootElement.GetProperty("delta").GetProperty("text").GetString());
            }
        }

        return text.ToString();
    }

    /// <summary>Sends a streamed request with raw HttpClient and reads the body until the end or the abort.</summary>
    private static async Task<(string Body, bool EndedAbnormally, string RequestId, string? Attempts)> ReadRawAsync(GatewayServer server, string path, string fault, object body, bool bearer)
    {
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        if (bearer)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", server.VirtualKey);
        }
        else
        {
            request.Headers.Add("x-api-key", server.VirtualKey);
            request.Headers.Add("anthropic-version", "2023-06-01");
        }

        request.Headers.Add(Fault, fault);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)response.StatusCode);
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        var attempts = response.Headers.TryGetValues("x-tokengateway-attempts", out var values) ? values.Single() : null;
        await using var stream = await response.Content.ReadAsStreamAsync();
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                received.Write(buffer, 0, read);
            }
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            return (Encoding.UTF8.GetString(received.ToArray()), true, requestId, attempts);
        }

        return (Encoding.UTF8.GetString(received.ToArray()), false, requestId, attempts);
    }

    /// <summary>Adds the fault header to every request and keeps the gateway's request id of the last response.</summary>
    private sealed class CaptureHandler(string header, string value) : DelegatingHandler(new SocketsHttpHandler())
    {
        public string HeaderValue => value;

        public string? RequestId { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Remove(header);
            request.Headers.Add(header, value);
            var response = await base.SendAsync(request, cancellationToken);
            if (response.Headers.TryGetValues("x-tokengateway-request-id", out var ids))
            {
                RequestId = ids.First();
            }

            return response;
        }
    }
}
