using System.Text;
using BenchmarkDotNet.Attributes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;

namespace TokenGateway.Benchmarks.Metering;

/// <summary>Usage extraction from a complete chat completion body (usage after a large choices array).</summary>
[MemoryDiagnoser]
public class ResponseUsageReaderBenchmarks
{
    private byte[] _body = [];

    /// <summary>Approximate body size in kilobytes.</summary>
    [Params(1, 100)]
    public int SizeKb { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var content = new StringBuilder();
        while (content.Length < SizeKb * 1024)
        {
            content.Append("The capital of France is Paris. \\n");
        }

        _body = Encoding.UTF8.GetBytes(
            "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1749213456,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\""
            + content + "\",\"refusal\":null},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1342,\"completion_tokens\":208,\"total_tokens\":1550,"
            + "\"prompt_tokens_details\":{\"cached_tokens\":1152,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":192,\"audio_tokens\":0}}}");
    }

    [Benchmark]
    public TokenUsage ReadChatUsage()
    {
        ResponseUsageReader.TryRead(LlmDialect.OpenAIChat, _body, out var usage);
        return usage;
    }
}
