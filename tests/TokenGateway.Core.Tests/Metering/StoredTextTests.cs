using TokenGateway.Core.Metering;

namespace TokenGateway.Core.Tests.Metering;

public sealed class StoredTextTests
{
    private static UsageEvent Event(string? model = "gpt-4o") => new()
    {
        RequestId = "req_1",
        Timestamp = DateTimeOffset.UnixEpoch,
        TeamId = "team_1",
        Route = "/v1/chat/completions",
        Model = model,
        Status = UsageStatus.Rejected,
        Stages = [new StageSaving("compact", 3)],
    };

    [Theory]
    [InlineData(0)]
    [InlineData(128)]
    [InlineData(129)]
    [InlineData(1_000_000)]
    public void Bound_String_AtMostMaxLengthAndAPrefixOfTheInput(int length)
    {
        var value = new string('x', length);

        var bounded = StoredText.Bound(value)!;

        Assert.Equal(Math.Min(length, StoredText.MaxLength), bounded.Length);
        Assert.StartsWith(bounded, value, StringComparison.Ordinal);
    }

    [Fact]
    public void Bound_SurrogatePairAtTheCut_NotSplit()
    {
        var value = new string('x', StoredText.MaxLength - 1) + "😀" + "tail";

        var bounded = StoredText.Bound(value)!;

        Assert.Equal(StoredText.MaxLength - 1, bounded.Length);
        Assert.False(char.IsHighSurrogate(bounded[^1]));
    }

    [Fact]
    public void Bound_Event_WithinBounds_SameInstance()
    {
        var e = Event();

        Assert.Same(e, StoredText.Bound(e));
    }

    [Fact]
    public void Bound_Event_HugeModelAndStageName_EveryTextFieldCut()
    {
        var e = Event(model: new string('m', 500_000)) with { Stages = [new StageSaving(new string('s', 1000), 1)], ErrorCode = new string('e', 300) };

        var bounded = StoredText.Bound(e);

        Assert.Equal(StoredText.MaxLength, bounded.Model!.Length);
        Assert.Equal(StoredText.MaxLength, bounded.ErrorCode!.Length);
        Assert.Equal(StoredText.MaxLength, Assert.Single(bounded.Stages).Name.Length);
        Assert.Equal(e.RequestId, bounded.RequestId);
        Assert.Equal(e.Usage, bounded.Usage);
    }
}
