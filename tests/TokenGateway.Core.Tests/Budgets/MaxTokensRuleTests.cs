using TokenGateway.Core.Budgets;
using TokenGateway.Core.Models;

namespace TokenGateway.Core.Tests.Budgets;

public sealed class MaxTokensRuleTests
{
    private static readonly ModelCard _model = new() { Name = "gpt-4o", Provider = "openai", MaxOutputTokens = 16_384 };

    [Theory]
    //          requested default  cap    toSend  worst   capped
    [InlineData(null,     null,    null,  null,   16_384, false)] // nothing set: the model's maximum bounds it
    [InlineData(500,      null,    null,  null,   500,    false)] // the client's value stands
    [InlineData(null,     1024,    null,  1024,   1024,   false)] // default applied
    [InlineData(null,     1024,    512,   512,    512,    true)]  // default above the cap: capped
    [InlineData(8000,     1024,    4096,  4096,   4096,   true)]  // client above the cap: capped
    [InlineData(2000,     1024,    4096,  null,   2000,   false)] // client within the cap: untouched
    [InlineData(null,     null,    4096,  4096,   4096,   true)]  // no value, cap below the model maximum: capped
    [InlineData(null,     null,    99_999, null,  16_384, false)] // cap above the model maximum: nothing to send
    [InlineData(99_999,   null,    null,  null,   16_384, false)] // the worst case never exceeds the model maximum
    public void Decide_Table(int? requested, int? policyDefault, int? cap, int? toSend, int worstCase, bool capped)
    {
        var decision = MaxTokensRule.Decide(requested, policyDefault, cap, _model);

        Assert.Equal(new MaxTokensDecision(toSend, worstCase, capped), decision);
    }

    [Fact]
    public void Decide_Embedding_NothingToSendAndNoOutput()
    {
        var decision = MaxTokensRule.Decide(100, 1024, 512, _model with { Kind = ModelKind.Embedding });

        Assert.Equal(default, decision);
    }

    [Theory]
    [InlineData(null, 300, 300)]
    [InlineData(1000, 300, 300)]
    [InlineData(200, 300, null)]
    [InlineData(300, 300, null)]
    public void Lower_AppliesOnlyWhenAbsentOrLarger(int? current, int ceiling, int? expected)
    {
        Assert.Equal(expected, MaxTokensRule.Lower(current, ceiling));
    }

    [Theory]
    [InlineData(null, null, 4096)]
    [InlineData(8000, 1024, 4096)]
    [InlineData(null, 1024, 4096)]
    [InlineData(300, 1024, 512)]
    public void Decide_IsIdempotent(int? requested, int? policyDefault, int cap)
    {
        var first = MaxTokensRule.Decide(requested, policyDefault, cap, _model);
        var sent = first.ToSend ?? requested;

        var second = MaxTokensRule.Decide(sent, policyDefault, cap, _model);

        Assert.True(second.ToSend is null || second.ToSend == sent);
        Assert.Equal(first.WorstCase, second.WorstCase);
    }
}
