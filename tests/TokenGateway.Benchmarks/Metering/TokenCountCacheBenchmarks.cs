using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Benchmarks.Metering;

/// <summary>
/// Pre-flight count of a chat request whose messages are 1 KB each (a conversation of <see cref="Messages"/> turns):
/// <c>Cold</c> clears <see cref="TokenCountCache"/> first (every segment is tokenized: a request never seen before),
/// <c>Warm</c> counts the same request again (the history an agent or chat re-sends on every turn).
/// </summary>
[MemoryDiagnoser]
public class TokenCountCacheBenchmarks
{
    private readonly ChatRequestTokenCounter _counter = new(TiktokenTokenizerRegistry.Shared);
    private readonly ModelCard _card = new() { Name = "gpt-4o", Provider = "openai", Tokenizer = "o200k_base" };
    private LlmRequest _request = null!; // set in GlobalSetup

    [Params(1, 20)]
    public int Messages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var messages = new JsonArray();
        for (var i = 0; i < Messages; i++)
        {
            var text = new StringBuilder();
            while (text.Length < 1000)
            {
                text.Append(CultureInfo.InvariantCulture, $"Turn {i}: the quarterly report shows revenue grew {i + text.Length % 17}% while support tickets dropped. ");
            }

            messages.Add(new JsonObject { ["role"] = i % 2 == 0 ? "user" : "assistant", ["content"] = text.ToString() });
        }

        var body = new JsonObject { ["model"] = "gpt-4o", ["messages"] = messages }.ToJsonString();
        if (!LlmRequestParser.TryParse(LlmDialect.OpenAIChat, Encoding.UTF8.GetBytes(body), out var request, out var error))
        {
            throw new InvalidOperationException(error.Message);
        }

        _request = request!;
        _counter.CountInputTokens(_request, _card);
    }

    [Benchmark(Baseline = true)]
    public int Cold()
    {
        TokenCountCache.Clear();
        return _counter.CountInputTokens(_request, _card);
    }

    [Benchmark]
    public int Warm() => _counter.CountInputTokens(_request, _card);
}
