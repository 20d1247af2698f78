using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Simulator.Tests;

internal static class Tokens
{
    private static readonly ChatRequestTokenCounter _counter = new(TiktokenTokenizerRegistry.Shared);

    /// <summary>The gateway's pre-flight count of a body (what the simulator must bill as the whole prompt).</summary>
    public static int Prompt(LlmDialect dialect, JsonObject body, string encoding) =>
        _counter.CountInputTokens(dialect, body, new ModelCard { Name = (string)body["model"]!, Provider = "test", Tokenizer = encoding });

    public static int O200k(string text) => TiktokenTokenizerRegistry.Shared.Get("o200k_base").CountTokens(text);

    public static int Cl100k(string text) => TiktokenTokenizerRegistry.Shared.Get("cl100k_base").CountTokens(text);

    public static int Claude(string text) => TiktokenTokenizerRegistry.Shared.Count("claude", text);

    /// <summary>About <paramref name="count"/> o200k tokens of distinct text (a unique tag keeps caches cold across tests).</summary>
    public static string LongText(int count, string tag)
    {
        var words = new System.Text.StringBuilder(tag);
        var i = 0;
        while (O200k(words.ToString()) < count)
        {
            for (var k = 0; k < 50; k++)
            {
                words.Append(" word").Append(i++);
            }
        }

        return words.ToString();
    }
}
