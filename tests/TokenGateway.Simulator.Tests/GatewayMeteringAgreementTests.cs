using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Simulator.Tests;

/// <summary>
/// The gateway's own usage readers (Core.Metering) must read exactly what the simulator bills, and its delivered-text
/// estimate must equal the billed output, so upstream usage and gateway estimates reconcile to the token.
/// </summary>
public sealed class GatewayMeteringAgreementTests : IAsyncLifetime
{
    private SimulatorHost _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorHost.StartAsync();

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    private async Task<(string Raw, SseStreamMeter Meter)> MeterStreamAsync(string path, JsonObject body, LlmDialect dialect, string? fault = null)
    {
        using var response = await _sim.PostAsync(path, body, fault, completion: HttpCompletionOption.ResponseHeadersRead);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        var meter = new SseStreamMeter(dialect, suppressUsageOnlyChunk: false);
        var sink = new ArrayBufferWriter<byte>();

        // Feed in odd-sized pieces, as a socket would deliver them.
        for (var offset = 0; offset < bytes.Length; offset += 37)
        {
            meter.Process(bytes.AsSpan(offset, Math.Min(37, bytes.Length - offset)), sink);
        }

        meter.Complete(sink);
        Assert.Equal(bytes, sink.WrittenSpan.ToArray());
        return (Encoding.UTF8.GetString(bytes), meter);
    }

    [Fact]
    public async Task OpenAIChatStream_MeterReadsBilledUsageAndDeliveredTextMatches()
    {
        var body = new JsonObject
        {
            ["model"] = "gpt-4o-mini",
            ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
        };

        var (_, meter) = await MeterStreamAsync("/v1/chat/completions", body, LlmDialect.OpenAIChat, "output-tokens=57");
        using (meter)
        {
            Assert.Equal(new TokenUsage(8, 57), meter.Usage);
            Assert.Equal(57, meter.DeliveredOutputTokens(TiktokenTokenizerRegistry.Shared, "o200k_base"));
            Assert.True(meter.SawTerminalEvent);
        }
    }

    [Fact]
    public async Task OpenAIChatStreamWithoutUsage_DeliveredTextStillMatchesTheAnswer()
    {
        var body = new JsonObject
        {
            ["model"] = "gpt-4",
            ["stream"] = true,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
        };

        var (_, meter) = await MeterStreamAsync("/v1/chat/completions", body, LlmDialect.OpenAIChat, "no-usage,output-tokens=31");
        using (meter)
        {
            Assert.Null(meter.Usage);
            Assert.Equal(31, meter.DeliveredOutputTokens(TiktokenTokenizerRegistry.Shared, "cl100k_base"));
        }
    }

    [Fact]
    public async Task ResponsesStream_MeterReadsCompletedUsage()
    {
        var body = new JsonObject { ["model"] = "o4-mini", ["stream"] = true, ["input"] = "hello" };

        var (raw, meter) = await MeterStreamAsync("/v1/responses", body, LlmDialect.OpenAIResponses);
        using (meter)
        {
            var completed = SseEvent.Parse(raw)[^1].Json["response"]!["usage"]!;
            Assert.Equal((int)completed["input_tokens"]!, meter.Usage!.Value.InputTokens);
            Assert.Equal(24 + 64, meter.Usage.Value.OutputTokens);
            Assert.Equal(64, meter.Usage.Value.ReasoningTokens);
        }
    }

    [Fact]
    public async Task AnthropicStream_MeterCombinesStartAndDelta()
    {
        var system = Tokens.LongText(1200, nameof(AnthropicStream_MeterCombinesStartAndDelta));
        var body = new JsonObject
        {
            ["model"] = "claude-sonnet-4-5",
            ["max_tokens"] = 100,
            ["stream"] = true,
            ["system"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = system, ["cache_control"] = new JsonObject { ["type"] = "ephemeral" } }),
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
        };

        var (raw, meter) = await MeterStreamAsync("/v1/messages", body, LlmDialect.AnthropicMessages);
        using (meter)
        {
            var start = SseEvent.Parse(raw)[0].Json["message"]!["usage"]!;
            var total = Tokens.Prompt(LlmDialect.AnthropicMessages, body, "claude");
            Assert.Equal(total, meter.Usage!.Value.InputTokens);
            Assert.Equal((int)start["cache_creation_input_tokens"]!, meter.Usage.Value.CacheWriteTokens);
            Assert.True(meter.Usage.Value.CacheWriteTokens > 0);
            Assert.Equal(24, meter.Usage.Value.OutputTokens);

            // Claude output is built with o200k_base tokens: an exact count there, the calibrated "claude" estimate above it.
            Assert.Equal(24, meter.DeliveredOutputTokens(TiktokenTokenizerRegistry.Shared, "o200k_base"));
        }
    }

    [Theory]
    [InlineData("/v1/chat/completions", LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}""")]
    [InlineData("/v1/responses", LlmDialect.OpenAIResponses, """{"model":"gpt-4o","input":"hello"}""")]
    [InlineData("/v1/messages", LlmDialect.AnthropicMessages, """{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"hello"}]}""")]
    [InlineData("/v1/embeddings", LlmDialect.OpenAIEmbeddings, """{"model":"text-embedding-3-small","input":["hello","world"]}""")]
    public async Task NonStreaming_ReaderReadsBilledUsageEqualToGatewayPreflightCount(string path, LlmDialect dialect, string json)
    {
        var body = JsonNode.Parse(json)!.AsObject();
        using var response = await _sim.PostAsync(path, body);
        var bytes = await response.Content.ReadAsByteArrayAsync();

        Assert.True(ResponseUsageReader.TryRead(dialect, bytes, out var usage));

        var encoding = dialect == LlmDialect.AnthropicMessages ? "claude" : dialect == LlmDialect.OpenAIEmbeddings ? "cl100k_base" : "o200k_base";
        Assert.Equal(Tokens.Prompt(dialect, body, encoding), usage.InputTokens);
        Assert.Equal(dialect == LlmDialect.OpenAIEmbeddings ? 0 : 24, usage.OutputTokens);
    }
}
