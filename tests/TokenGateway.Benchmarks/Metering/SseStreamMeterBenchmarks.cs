using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;

namespace TokenGateway.Benchmarks.Metering;

/// <summary>The SSE tap over a 2,000-event stream fed in network-sized chunks.</summary>
[MemoryDiagnoser]
public class SseStreamMeterBenchmarks
{
    private const int Events = 2_000;
    private readonly ArrayBufferWriter<byte> _output = new(1 << 20);
    private byte[] _chat = [];
    private byte[] _anthropic = [];

    /// <summary>Bytes per upstream read (a TCP segment-ish 1,460 and a typical 16 KB socket read).</summary>
    [Params(1460, 16384)]
    public int ChunkSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var chat = new StringBuilder();
        for (var i = 0; i < Events - 2; i++)
        {
            chat.Append("data: {\"id\":\"chatcmpl-BfS1a2b3c4d5e6f7g8h9i0jKlMn\",\"object\":\"chat.completion.chunk\",\"created\":1749213500,")
                .Append("\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_07871e2ad8\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token")
                .Append(i).Append("\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n");
        }

        chat.Append("data: {\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":1187,\"completion_tokens\":1998,\"total_tokens\":3185,\"prompt_tokens_details\":{\"cached_tokens\":1024}}}\n\n");
        chat.Append("data: [DONE]\n\n");
        _chat = Encoding.UTF8.GetBytes(chat.ToString());

        var anthropic = new StringBuilder();
        anthropic.Append("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":14,\"cache_read_input_tokens\":2048,\"output_tokens\":1}}}\n\n");
        for (var i = 0; i < Events - 3; i++)
        {
            anthropic.Append("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" word")
                .Append(i).Append("\"}}\n\n");
        }

        anthropic.Append("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1997}}\n\n");
        anthropic.Append("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        _anthropic = Encoding.UTF8.GetBytes(anthropic.ToString());
    }

    [Benchmark(Baseline = true)]
    public TokenUsage? OpenAIChat2000Events() => Run(LlmDialect.OpenAIChat, _chat);

    [Benchmark]
    public TokenUsage? Anthropic2000Events() => Run(LlmDialect.AnthropicMessages, _anthropic);

    private TokenUsage? Run(LlmDialect dialect, byte[] stream)
    {
        _output.ResetWrittenCount();
        using var meter = new SseStreamMeter(dialect, suppressUsageOnlyChunk: true);
        for (var offset = 0; offset < stream.Length; offset += ChunkSize)
        {
            meter.Process(stream.AsSpan(offset, Math.Min(ChunkSize, stream.Length - offset)), _output);
        }

        meter.Complete(_output);
        return meter.Usage;
    }
}
