using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Core.Tests.StructuredOutput;

public sealed class LocalJsonRepairTests
{
    [Fact]
    public void TryRepair_FenceWithProse_ReturnsInnerJson()
    {
        var repaired = LocalJsonRepair.TryRepair("Here is the JSON you asked for:\n\n```json\n{\"a\": 1}\n```\n\nAnything else?");

        Assert.Equal("{\"a\": 1}", repaired!.Text);
        Assert.Equal(["code_fence"], repaired.Fixes);
    }

    [Fact]
    public void TryRepair_ProseAroundJson_ExtractsBalancedValue()
    {
        var repaired = LocalJsonRepair.TryRepair("Sure: {\"a\": \"x}y\", \"b\": [1, 2]} hope this helps {not json}");

        Assert.Equal("{\"a\": \"x}y\", \"b\": [1, 2]}", repaired!.Text);
        Assert.Contains("surrounding_text", repaired.Fixes);
    }

    [Fact]
    public void TryRepair_TrailingCommas_Removed()
    {
        var repaired = LocalJsonRepair.TryRepair("{\"a\": [1, 2,], \"b\": \"x,]\",}");

        Assert.Equal("{\"a\": [1, 2], \"b\": \"x,]\"}", repaired!.Text);
        Assert.Contains("trailing_commas", repaired.Fixes);
    }

    [Fact]
    public void TryRepair_SmartQuotes_BecomeJsonQuotes()
    {
        var repaired = LocalJsonRepair.TryRepair("{\u201Cname\u201D: \u201CAda \"the first\"\u201D}");

        Assert.Equal("{\"name\": \"Ada \\\"the first\\\"\"}", repaired!.Text);
        Assert.Contains("smart_quotes", repaired.Fixes);
    }

    [Theory]
    [InlineData("{\"a\": 1}")]
    [InlineData("no json here at all")]
    [InlineData("{\"a\": }")]
    public void TryRepair_ValidOrBeyondLocalRepair_Null(string text)
    {
        Assert.Null(LocalJsonRepair.TryRepair(text));
    }
}
