using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
using TokenGateway.Proxy;

namespace TokenGateway.IntegrationTests.Proxy;

/// <summary>The request outcome's transitions and precedence (ADR 0002), without a host.</summary>
public sealed class ExchangeOutcomeTests
{
    [Fact]
    public void SchemaFailure_ReportedBeforeOrAfterStreamEnd_SameOutcome()
    {
        var first = default(ExchangeOutcome);
        first.SchemaFailed(blocking: true);
        first.Completed();

        var second = default(ExchangeOutcome);
        second.Completed();
        second.SchemaFailed(blocking: true);

        Assert.Equal(UsageStatus.SchemaInvalid, first.Status(clientGone: false));
        Assert.Equal(first.Kind, second.Kind);
        Assert.Equal("schema_validation_failed", first.ErrorCode);
        Assert.Equal(first.ErrorCode, second.ErrorCode);
    }

    [Fact]
    public void NonBlockingSchemaFailure_KeepsOkStatusWithCode()
    {
        var outcome = default(ExchangeOutcome);
        outcome.Completed();
        outcome.SchemaFailed(blocking: false);

        Assert.Equal(UsageStatus.Ok, outcome.Status(clientGone: false));
        Assert.Equal("schema_validation_failed", outcome.ErrorCode);
    }

    [Fact]
    public void Rejected_IsFinal()
    {
        var outcome = default(ExchangeOutcome);
        outcome.GatewayError(GatewayError.BudgetExceeded);
        outcome.Aborted();
        outcome.UpstreamFailed("upstream_500");
        outcome.Completed();

        Assert.Equal(UsageStatus.Rejected, outcome.Status(clientGone: true));
        Assert.Equal("budget_exceeded", outcome.ErrorCode);
    }

    [Fact]
    public void ClientAbort_OutranksUpstreamFailure_AndKeepsItsCode()
    {
        var outcome = default(ExchangeOutcome);
        outcome.UpstreamFailed("upstream_503");
        outcome.Aborted();

        Assert.Equal(UsageStatus.ClientAborted, outcome.Status(clientGone: false));
        Assert.Equal("upstream_503", outcome.ErrorCode);
    }

    [Fact]
    public void UpstreamFailure_OutranksSchemaInvalidAndCompleted()
    {
        var outcome = default(ExchangeOutcome);
        outcome.Completed();
        outcome.SchemaFailed(blocking: true);
        outcome.UpstreamFailed(null);

        Assert.Equal(UsageStatus.UpstreamError, outcome.Status(clientGone: false));
    }

    [Theory]
    [InlineData(GatewayError.UpstreamUnavailable, "upstream_error")]
    [InlineData(GatewayError.UpstreamTimeout, "upstream_error")]
    [InlineData(GatewayError.InternalError, "upstream_error")]
    [InlineData(GatewayError.InvalidApiKey, "rejected")]
    [InlineData(GatewayError.RequestTooLarge, "rejected")]
    public void GatewayError_MapsToItsKind(GatewayError error, string status)
    {
        var outcome = default(ExchangeOutcome);
        outcome.GatewayError(error);

        Assert.Equal(status, outcome.Status(clientGone: false));
        Assert.Equal(GatewayErrors.Describe(error).Code, outcome.ErrorCode);
    }

    [Fact]
    public void Pending_IsOkOrAbortedByTheConnection()
    {
        var outcome = default(ExchangeOutcome);

        Assert.Equal(UsageStatus.Ok, outcome.Status(clientGone: false));
        Assert.Equal(UsageStatus.ClientAborted, outcome.Status(clientGone: true));
    }

    [Fact]
    public void Repairs_AreSummedInOnePlace_AndFirstByteWins()
    {
        var outcome = default(ExchangeOutcome);
        outcome.AddRepair(new TokenUsage(10, 5), 0.25m);
        outcome.AddRepair(new TokenUsage(20, 7), 0.5m);
        outcome.FirstByte(12);
        outcome.FirstByte(40);

        Assert.Equal(new TokenUsage(30, 12), outcome.RepairUsage);
        Assert.Equal(0.75m, outcome.RepairCostUsd);
        Assert.Equal(2, outcome.Repairs);
        Assert.Equal(12, outcome.TtftMs);
    }

    [Fact]
    public void AdmissionFacts_AreSetOnce()
    {
        var exchange = new LlmExchange("req_1", Core.Dialects.LlmDialect.OpenAIChat, "/v1/chat/completions", DateTimeOffset.UnixEpoch);
        exchange.SetCaller("team", "key");

        Assert.Throws<InvalidOperationException>(() => exchange.SetCaller("other", null));
        Assert.Equal("team", exchange.TeamId);
    }
}
