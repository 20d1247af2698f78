using System.Buffers;
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI.Responses;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tests.Fixtures;
using TokenGateway.Core.Translation;

namespace TokenGateway.Core.Tests.Translation;

#pragma warning disable OPENAI001 // the Responses surface is marked experimental in the SDK

/// <summary>Anthropic answers and streams translated for OpenAI Responses clients (issue #16).</summary>
public sealed class ResponsesAnswerTranslationTests
{
    private static JsonObject GoldenMessage() => JsonNode.Parse(FixtureFiles.Read("anthropic-messages.json"))!.AsObject();

    private static byte[] Translate(byte[] input, int chunk = int.MaxValue, AnthropicToResponsesStreamTranslator? sut = null)
    {
        using var translator = sut is null ? new AnthropicToResponsesStreamTranslator(created: 1749213600) : null;
        var t = sut ?? translator!;
        var output = new ArrayBufferWriter<byte>();
        for (var i = 0; i < input.Length; i += chunk)
        {
            t.Process(input.AsSpan(i, Math.Min(chunk, input.Length - i)), output);
        }

        t.Complete(output);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Each event's <c>event:</c> name and its parsed data.</summary>
    private static List<(string Event, JsonObject Data)> Events(byte[] stream)
    {
        var events = new List<(string, JsonObject)>();
        foreach (var block in Encoding.UTF8.GetString(stream).Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = block.Split('\n');
            Assert.Equal(2, lines.Length);
            Assert.StartsWith("event: ", lines[0], StringComparison.Ordinal);
            Assert.StartsWith("data: ", lines[1], StringComparison.Ordinal);
            events.Add((lines[0]["event: ".Length..], JsonNode.Parse(lines[1]["data: ".Length..])!.AsObject()));
        }

        return events;
    }

    private static SseStreamMeter Meter(LlmDialect dialect, byte[] stream)
    {
        var meter = new SseStreamMeter(dialect, suppressUsageOnlyChunk: false);
        var sink = new ArrayBufferWriter<byte>();
        meter.Process(stream, sink);
        meter.Complete(sink);
        return meter;
    }

    private static string AnthropicEvent(string json) => $"event: x\ndata: {json}\n\n";

    private static byte[] AnthropicStream(params string[] events) => Encoding.UTF8.GetBytes(string.Concat(events.Select(AnthropicEvent)));

    // ------------------------------------------------------------------ complete answers

    [Fact]
    public void MessageToResponse_GoldenToolAnswer_MessageAndFunctionCallItemsAndUsage()
    {
        var response = ResponseTranslator.MessageToResponse(GoldenMessage(), created: 1749213600);

        Assert.Equal("response", (string)response["object"]!);
        Assert.Equal("resp_01XFDUDYJgAACzvnptvVoYEL", (string)response["id"]!);
        Assert.Equal(1749213600, (long)response["created_at"]!);
        Assert.Equal("completed", (string)response["status"]!);
        Assert.Null(response["incomplete_details"]);
        Assert.Equal("claude-sonnet-4-5-20250929", (string)response["model"]!);
        var output = response["output"]!.AsArray();
        Assert.Equal(2, output.Count);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"id":"msg_01XFDUDYJgAACzvnptvVoYEL_0","type":"message","status":"completed","role":"assistant",
             "content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"I'll check the weather in San Francisco for you."}]}
            """), output[0]));
        var call = output[1]!.AsObject();
        Assert.Equal("function_call", (string)call["type"]!);
        Assert.Equal("toolu_01A09q90qw90lq917835lq9", (string)call["call_id"]!);
        Assert.Equal("get_weather", (string)call["name"]!);
        Assert.Equal("completed", (string)call["status"]!);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"location":"San Francisco, CA","unit":"celsius"}"""), JsonNode.Parse((string)call["arguments"]!)));
        // input_tokens counts every input token (fresh + cache write + cache read), as OpenAI's does.
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"input_tokens":17053,"input_tokens_details":{"cached_tokens":14385},"output_tokens":89,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":17142}
            """), response["usage"]));
    }

    [Theory]
    [InlineData("max_tokens", "max_output_tokens")]
    [InlineData("model_context_window_exceeded", "max_output_tokens")]
    [InlineData("refusal", "content_filter")]
    public void MessageToResponse_CutOrRefused_IncompleteWithReason(string stopReason, string reason)
    {
        var message = GoldenMessage();
        message["stop_reason"] = stopReason;

        var response = ResponseTranslator.MessageToResponse(message, created: 1);

        Assert.Equal("incomplete", (string)response["status"]!);
        Assert.Equal(reason, (string)response["incomplete_details"]!["reason"]!);
    }

    [Fact]
    public void MessageToResponse_Thinking_BecomesReasoningItemWithSummary()
    {
        var message = JsonNode.Parse("""
            {"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","stop_reason":"end_turn",
             "content":[{"type":"thinking","thinking":"Let me think.","signature":"sig"},{"type":"redacted_thinking","data":"x"},{"type":"text","text":"42"}],
             "usage":{"input_tokens":10,"output_tokens":5}}
            """)!.AsObject();

        var output = ResponseTranslator.MessageToResponse(message, created: 1)["output"]!.AsArray();

        Assert.Equal(2, output.Count);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"id":"rs_1_0","type":"reasoning","summary":[{"type":"summary_text","text":"Let me think."}]}"""), output[0]));
        Assert.Equal("42", (string)output[1]!["content"]![0]!["text"]!);
    }

    [Fact]
    public void DialectTranslator_ResponsesClientAnthropicUpstream_TranslatesAnswerAndError()
    {
        var answer = DialectTranslator.TranslateAnswer(LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages, GoldenMessage(), 7, out var error);
        var envelope = DialectTranslator.TranslateError(LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages,
            JsonNode.Parse("""{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}""")!.AsObject(), 529);

        Assert.Null(error);
        Assert.Equal("response", (string)answer!["object"]!);
        Assert.Equal("server_error", (string)envelope!["error"]!["type"]!);
        Assert.Equal("overloaded_error", (string)envelope["error"]!["code"]!);
        Assert.IsType<AnthropicToResponsesStreamTranslator>(DialectTranslator.CreateStreamTranslator(LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages, true, 1));
    }

    // ------------------------------------------------------------------ streams

    [Fact]
    public void Stream_GoldenToolStream_EventSequenceIsTheResponsesApis()
    {
        var events = Events(Translate(FixtureFiles.Read("anthropic-messages-stream-tool.sse")));

        Assert.Equal(
        [
            "response.created", "response.in_progress",
            "response.output_item.added", "response.content_part.added", "response.output_text.delta",
            "response.output_text.done", "response.content_part.done", "response.output_item.done",
            "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
            "response.function_call_arguments.done", "response.output_item.done",
            "response.completed",
        ], events.Select(e => e.Event));
        Assert.All(events, e => Assert.Equal(e.Event, (string)e.Data["type"]!));
        Assert.Equal(Enumerable.Range(0, events.Count), events.Select(e => (int)e.Data["sequence_number"]!));

        var created = events[0].Data["response"]!;
        Assert.Equal("resp_014p7gG3wDgGV9EUtLvnow3U", (string)created["id"]!);
        Assert.Equal("in_progress", (string)created["status"]!);
        Assert.Equal(1749213600, (long)created["created_at"]!);
        Assert.Empty(created["output"]!.AsArray());
        Assert.Null(created["usage"]);

        Assert.Equal("Okay, let's check the weather for San Francisco, CA:", (string)events[4].Data["delta"]!);
        Assert.Equal(0, (int)events[4].Data["output_index"]!);
        Assert.Equal(0, (int)events[4].Data["content_index"]!);
        Assert.Equal((string)events[2].Data["item"]!["id"]!, (string)events[4].Data["item_id"]!);
        Assert.Equal("Okay, let's check the weather for San Francisco, CA:", (string)events[5].Data["text"]!);

        var callAdded = events[8].Data["item"]!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"id":"fc_toolu_01T1x1fJ34qAmk2tNTrN7Up6","type":"function_call","status":"in_progress","call_id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","arguments":""}
            """), callAdded));
        Assert.Equal(1, (int)events[8].Data["output_index"]!);
        var arguments = (string)events[9].Data["delta"]! + (string)events[10].Data["delta"]!;
        Assert.Equal("{\"location\": \"San Francisco, CA\"}", arguments);
        Assert.Equal(arguments, (string)events[11].Data["arguments"]!);
        Assert.Equal("get_weather", (string)events[11].Data["name"]!);
        Assert.Equal(arguments, (string)events[12].Data["item"]!["arguments"]!);
        Assert.Equal("completed", (string)events[12].Data["item"]!["status"]!);

        var completed = events[^1].Data["response"]!;
        Assert.Equal("completed", (string)completed["status"]!);
        Assert.Equal(2, completed["output"]!.AsArray().Count);
        Assert.True(JsonNode.DeepEquals(events[7].Data["item"], completed["output"]![0]));
        Assert.True(JsonNode.DeepEquals(events[12].Data["item"], completed["output"]![1]));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"input_tokens":2520,"input_tokens_details":{"cached_tokens":2048},"output_tokens":89,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":2609}
            """), completed["usage"]));
    }

    [Theory]
    [InlineData("anthropic-messages-stream.sse")]
    [InlineData("anthropic-messages-stream-tool.sse")]
    public void Stream_Golden_ResponsesMeterSeesSameUsageAsAnthropicMeterAndEveryDelta(string fixture)
    {
        var input = FixtureFiles.Read(fixture);
        var original = Meter(LlmDialect.AnthropicMessages, input);

        var translated = Translate(input);
        var meter = Meter(LlmDialect.OpenAIResponses, translated);

        Assert.True(meter.SawTerminalEvent);
        // What a Responses client sees as text: every text and argument delta (thinking travels in the reasoning item).
        var deltas = string.Concat(Events(translated)
            .Where(e => e.Event is "response.output_text.delta" or "response.function_call_arguments.delta")
            .Select(e => (string)e.Data["delta"]!));
        Assert.Equal(deltas, Encoding.UTF8.GetString(meter.DeliveredTextUtf8));
        Assert.EndsWith(deltas[^10..], Encoding.UTF8.GetString(original.DeliveredTextUtf8), StringComparison.Ordinal);
        Assert.Equal(original.Usage!.Value.InputTokens, meter.Usage!.Value.InputTokens);
        Assert.Equal(original.Usage.Value.OutputTokens, meter.Usage.Value.OutputTokens);
        Assert.Equal(original.Usage.Value.CachedInputTokens, meter.Usage.Value.CachedInputTokens);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    public void Stream_AnyChunking_SameOutput(int chunk)
    {
        var input = FixtureFiles.Read("anthropic-messages-stream-tool.sse");

        Assert.Equal(Translate(input), Translate(input, chunk));
    }

    [Fact]
    public void Stream_EscapedText_ReachesClientAndDoneEventsIntact()
    {
        var input = AnthropicStream(
            """{"type":"message_start","message":{"id":"msg_e","model":"claude-haiku-4-5","usage":{"input_tokens":3,"output_tokens":1}}}""",
            """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""",
            """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a \"quoted\"\n"}}""",
            """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"line \u00e9 \ud83d\ude00"}}""",
            """{"type":"content_block_stop","index":0}""",
            """{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}""",
            """{"type":"message_stop"}""");

        var events = Events(Translate(input));

        var expected = "a \"quoted\"\nline é 😀";
        Assert.Equal(expected, string.Concat(events.Where(e => e.Event == "response.output_text.delta").Select(e => (string)e.Data["delta"]!)));
        Assert.Equal(expected, (string)events.Single(e => e.Event == "response.output_text.done").Data["text"]!);
        Assert.Equal(expected, (string)events[^1].Data["response"]!["output"]![0]!["content"]![0]!["text"]!);
        Assert.Equal(9, (int)events[^1].Data["response"]!["usage"]!["output_tokens"]!);
    }

    [Fact]
    public void Stream_MaxTokens_EndsWithResponseIncomplete()
    {
        var input = AnthropicStream(
            """{"type":"message_start","message":{"id":"msg_m","model":"claude-haiku-4-5","usage":{"input_tokens":3,"output_tokens":1}}}""",
            """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""",
            """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"cut"}}""",
            """{"type":"content_block_stop","index":0}""",
            """{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":5}}""",
            """{"type":"message_stop"}""");
        var sut = new AnthropicToResponsesStreamTranslator(created: 1);

        var events = Events(Translate(input, sut: sut));

        Assert.True(sut.Completed);
        Assert.Equal("response.incomplete", events[^1].Event);
        Assert.Equal("incomplete", (string)events[^1].Data["response"]!["status"]!);
        Assert.Equal("max_output_tokens", (string)events[^1].Data["response"]!["incomplete_details"]!["reason"]!);
        Assert.Equal(5, (int)events[^1].Data["response"]!["usage"]!["output_tokens"]!);
        Assert.Equal(5, sut.Usage!.Value.OutputTokens);
        sut.Dispose();
    }

    [Fact]
    public void Stream_ThinkingBlock_ReasoningItemWithSummaryAndNoTextLeak()
    {
        var input = AnthropicStream(
            """{"type":"message_start","message":{"id":"msg_t","model":"claude-sonnet-4-5","usage":{"input_tokens":3,"output_tokens":1}}}""",
            """{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}""",
            """{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm, "}}""",
            """{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"six times seven."}}""",
            """{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}""",
            """{"type":"content_block_stop","index":0}""",
            """{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}""",
            """{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"42"}}""",
            """{"type":"content_block_stop","index":1}""",
            """{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":20}}""",
            """{"type":"message_stop"}""");

        var events = Events(Translate(input));

        var reasoningDone = events.First(e => e.Event == "response.output_item.done").Data;
        Assert.Equal(0, (int)reasoningDone["output_index"]!);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"id":"rs_t_0","type":"reasoning","summary":[{"type":"summary_text","text":"Hmm, six times seven."}]}"""), reasoningDone["item"]));
        Assert.Equal("42", string.Concat(events.Where(e => e.Event == "response.output_text.delta").Select(e => (string)e.Data["delta"]!)));
        Assert.Equal(1, (int)events.Single(e => e.Event == "response.output_text.delta").Data["output_index"]!);
        Assert.Equal(2, events[^1].Data["response"]!["output"]!.AsArray().Count);
    }

    [Fact]
    public void Stream_CutBeforeMessageStop_InventsNoEnd()
    {
        var input = FixtureFiles.Read("anthropic-messages-stream.sse");
        var cut = input.AsSpan(0, Encoding.UTF8.GetString(input).IndexOf("event: message_delta", StringComparison.Ordinal)).ToArray();
        var sut = new AnthropicToResponsesStreamTranslator(created: 1);

        var text = Encoding.UTF8.GetString(Translate(cut, sut: sut));

        Assert.False(sut.Completed);
        Assert.DoesNotContain("response.completed", text, StringComparison.Ordinal);
        Assert.DoesNotContain("response.incomplete", text, StringComparison.Ordinal);
        sut.Dispose();
    }

    [Fact]
    public void Stream_ErrorEvent_BecomesResponsesErrorEventWithSequenceNumber()
    {
        var input = AnthropicStream(
            """{"type":"message_start","message":{"id":"msg_x","model":"claude-haiku-4-5","usage":{"input_tokens":3,"output_tokens":1}}}""",
            """{"type":"error","error":{"type":"overloaded_error","message":"Overloaded \"now\""}}""");

        var events = Events(Translate(input));

        Assert.Equal("error", events[^1].Event);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"type":"error","sequence_number":2,"code":"overloaded_error","message":"Overloaded \"now\"","param":null}
            """), events[^1].Data));
    }

    // ------------------------------------------------------------------ the official OpenAI SDK parses the translation

    [Fact]
    public async Task OpenAISdk_TranslatedClaudeToolStream_ReassemblesTextCallAndUsage()
    {
        var stream = Translate(FixtureFiles.Read("anthropic-messages-stream-tool.sse"));
        var text = new StringBuilder();
        FunctionCallResponseItem? call = null;
        ResponseResult? completed = null;

        await foreach (var update in await Client(stream, "text/event-stream").CreateResponseStreamingAsync(
            new CreateResponseOptions("claude-sonnet-4-5", [ResponseItem.CreateUserMessageItem("Weather?")]) { StreamingEnabled = true }))
        {
            switch (update)
            {
                case StreamingResponseOutputTextDeltaUpdate delta:
                    text.Append(delta.Delta);
                    break;
                case StreamingResponseOutputItemDoneUpdate { Item: FunctionCallResponseItem item }:
                    call = item;
                    break;
                case StreamingResponseCompletedUpdate end:
                    completed = end.Response;
                    break;
                default:
                    break;
            }
        }

        Assert.Equal("Okay, let's check the weather for San Francisco, CA:", text.ToString());
        Assert.Equal("toolu_01T1x1fJ34qAmk2tNTrN7Up6", call!.CallId);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("{\"location\": \"San Francisco, CA\"}", call.FunctionArguments.ToString());
        Assert.Equal(ResponseStatus.Completed, completed!.Status);
        Assert.Equal(2520, completed.Usage.InputTokenCount);
        Assert.Equal(2048, completed.Usage.InputTokenDetails.CachedTokenCount);
        Assert.Equal(89, completed.Usage.OutputTokenCount);
        Assert.Equal(2609, completed.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task OpenAISdk_TranslatedClaudeMessage_ParsesItemsAndUsage()
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(ResponseTranslator.MessageToResponse(GoldenMessage(), created: 1));

        ResponseResult result = await Client(body, "application/json").CreateResponseAsync(
            new CreateResponseOptions("claude-sonnet-4-5", [ResponseItem.CreateUserMessageItem("Weather?")]));

        Assert.Equal("I'll check the weather in San Francisco for you.", result.GetOutputText());
        var call = Assert.IsType<FunctionCallResponseItem>(result.OutputItems[1]);
        Assert.Equal("toolu_01A09q90qw90lq917835lq9", call.CallId);
        Assert.Equal(17053, result.Usage.InputTokenCount);
        Assert.Equal(14385, result.Usage.InputTokenDetails.CachedTokenCount);
        Assert.Equal(89, result.Usage.OutputTokenCount);
        Assert.Equal(0, result.Usage.OutputTokenDetails.ReasoningTokenCount);
    }

    private static ResponsesClient Client(byte[] body, string contentType) => new(new ApiKeyCredential("tg-test"), new ResponsesClientOptions
    {
        Transport = new HttpClientPipelineTransport(new HttpClient(new CannedHandler(body, contentType))),
        RetryPolicy = new ClientRetryPolicy(0),
    });

    private sealed class CannedHandler(byte[] body, string contentType) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = content, RequestMessage = request });
        }
    }
}
