using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tests.Infrastructure;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Tests.Tokenization;

[Collection(nameof(SerialCollection))]
public sealed class TokenCountCacheTests
{
    private static readonly string LongText = string.Concat(Enumerable.Range(0, 40).Select(i => $"Sentence number {i} about quarterly revenue. "));

    [Fact]
    public void CountText_LongText_CachedOnceAndEqualToTokenizer()
    {
        TokenCountCache.Clear();
        var tokenizer = TiktokenTokenizerRegistry.Shared.Get("o200k_base");

        var first = JsonTokenText.CountText(tokenizer, LongText);
        var entries = TokenCountCache.Count;
        var second = JsonTokenText.CountText(tokenizer, LongText);

        Assert.Equal(tokenizer.CountTokens(LongText), first);
        Assert.Equal(first, second);
        Assert.Equal(1, entries);
        Assert.Equal(1, TokenCountCache.Count);
    }

    [Fact]
    public void CountText_ShortText_NotCached()
    {
        TokenCountCache.Clear();
        var tokenizer = TiktokenTokenizerRegistry.Shared.Get("o200k_base");

        Assert.Equal(tokenizer.CountTokens("short text"), JsonTokenText.CountText(tokenizer, "short text"));
        Assert.Equal(0, TokenCountCache.Count);
    }

    [Fact]
    public void CountText_SameTextTwoTokenizers_KeptApart()
    {
        TokenCountCache.Clear();
        var text = string.Concat(Enumerable.Repeat("naïve façade → 数据 🚀 ", 30));
        var o200k = TiktokenTokenizerRegistry.Shared.Get("o200k_base");
        var cl100k = TiktokenTokenizerRegistry.Shared.Get("cl100k_base");
        Assert.NotEqual(o200k.CountTokens(text), cl100k.CountTokens(text)); // the test needs texts that differ

        Assert.Equal(o200k.CountTokens(text), JsonTokenText.CountText(o200k, text));
        Assert.Equal(cl100k.CountTokens(text), JsonTokenText.CountText(cl100k, text));
        Assert.Equal(o200k.CountTokens(text), JsonTokenText.CountText(o200k, text));
        Assert.Equal(2, TokenCountCache.Count);
    }

    [Fact]
    public void CountInputTokens_RepeatedAndEscapedSegments_SameCountsAsUncached()
    {
        var body = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "system", ["content"] = "Rules:\n" + LongText },
                new JsonObject { ["role"] = "user", ["content"] = LongText },
                new JsonObject { ["role"] = "assistant", ["content"] = "Rules:\n" + LongText },
                new JsonObject { ["role"] = "user", ["content"] = "\"quoted\"\t" + LongText }),
        }.ToJsonString();
        var card = new ModelCard { Name = "gpt-4o", Provider = "openai", Tokenizer = "o200k_base" };
        var counter = new ChatRequestTokenCounter(TiktokenTokenizerRegistry.Shared);
        Assert.True(LlmRequestParser.TryParse(LlmDialect.OpenAIChat, Encoding.UTF8.GetBytes(body), out var request, out _));
        var tokenizer = TiktokenTokenizerRegistry.Shared.Get("o200k_base");
        var expected = (4 * 3) + 3 + (4 * 1) // per message, reply priming, one token per standard role
            + (2 * tokenizer.CountTokens("Rules:\n" + LongText)) + tokenizer.CountTokens(LongText) + tokenizer.CountTokens("\"quoted\"\t" + LongText);

        TokenCountCache.Clear();
        var cold = counter.CountInputTokens(request!, card);
        var entries = TokenCountCache.Count;
        var warm = counter.CountInputTokens(request!, card);

        Assert.Equal(expected, cold);
        Assert.Equal(expected, warm);
        Assert.InRange(entries, 3, 12); // whole segments (the repeated one once) and the chunks of the long ones
        Assert.Equal(entries, TokenCountCache.Count); // the warm count added nothing: every segment was a hit
    }

    [Fact]
    public void CountText_LongMultiLineTextWithOneLineChanged_EqualsWholeTextCount()
    {
        TokenCountCache.Clear();
        var tokenizer = TiktokenTokenizerRegistry.Shared.Get("o200k_base");
        var records = string.Join('\n', Enumerable.Range(0, 80).Select(i => $"{{\"id\": {i}, \"name\": \"Product {i}\", \"note\": \"it's in stock\"}}"));
        var first = "Records:\n" + records + "\nQuestion: which are in stock?";
        var second = "Records:\n" + records + "\nQuestion: which are out of stock? (request 7f3a)";

        Assert.Equal(tokenizer.CountTokens(first), JsonTokenText.CountText(tokenizer, first));
        var entries = TokenCountCache.Count;
        Assert.Equal(tokenizer.CountTokens(second), JsonTokenText.CountText(tokenizer, second));

        Assert.True(first.Length >= JsonTokenText.ChunkedMinChars);
        Assert.InRange(TokenCountCache.Count - entries, 0, 2); // only the changed last line was new
    }

    [Fact]
    public void Add_BeyondCapacity_KeepsAtMostTwoGenerations()
    {
        TokenCountCache.Clear();
        var tokenizer = TiktokenTokenizerRegistry.Shared.Get("o200k_base");

        for (var i = 0; i < (TokenCountCache.GenerationCapacity * 3) + 7; i++)
        {
            TokenCountCache.Add(new TokenCountCache.Key(tokenizer, (UInt128)i, 300, TokenCountCache.SegmentKind.Utf8), i);
        }

        Assert.InRange(TokenCountCache.Count, TokenCountCache.GenerationCapacity, 2 * TokenCountCache.GenerationCapacity);
        TokenCountCache.Clear();
    }
}
