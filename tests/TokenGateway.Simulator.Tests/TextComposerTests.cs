using CsCheck;
using TokenGateway.Simulator.Generation;

namespace TokenGateway.Simulator.Tests;

public sealed class TextComposerTests
{
    [Theory]
    [InlineData("o200k_base")]
    [InlineData("cl100k_base")]
    public void Compose_AnyLengthAndSeed_HasExactlyThatManyTokens(string encoding)
    {
        Gen.Select(Gen.Int[0, 600], Gen.ULong).Sample((tokens, seed) =>
        {
            var text = TextComposer.Compose(encoding, tokens, seed);
            var count = encoding == "o200k_base" ? Tokens.O200k(text.Text) : Tokens.Cl100k(text.Text);
            return count == tokens && text.TokenCount == tokens && (tokens == 0 || text.TokenEnds[^1] == text.Text.Length);
        }, iter: 300);
    }

    [Fact]
    public void Compose_SameSeed_SameText()
    {
        Assert.Equal(TextComposer.Compose("o200k_base", 40, 7).Text, TextComposer.Compose("o200k_base", 40, 7).Text);
        Assert.NotEqual(TextComposer.Compose("o200k_base", 40, 7).Text, TextComposer.Compose("o200k_base", 40, 8).Text);
    }

    [Fact]
    public void Compose_Text_LooksLikeSentences()
    {
        var text = TextComposer.Compose("o200k_base", 60, 42).Text;

        Assert.True(char.IsUpper(text[0]));
        Assert.EndsWith(".", text, StringComparison.Ordinal);
        Assert.DoesNotContain("  ", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncate_JsonText_KeepsExactTokenCount()
    {
        var full = TokenizedText.FromText("o200k_base", "{\"name\":\"Ünïcödé ✓ value\",\"n\":12345,\"emoji\":\"🙂🙂\"}");

        for (var n = 0; n <= full.TokenCount; n++)
        {
            var cut = full.Truncate("o200k_base", n);
            Assert.Equal(Tokens.O200k(cut.Text), cut.TokenCount);
            Assert.True(cut.TokenCount <= n);
        }
    }
}
