using TokenGateway.Core.Resilience;

namespace TokenGateway.Core.Tests.Resilience;

public sealed class RetryClassifierTests
{
    [Theory]
    [InlineData(408, FailureClass.Transient)]
    [InlineData(429, FailureClass.RateLimited)]
    [InlineData(500, FailureClass.Transient)]
    [InlineData(502, FailureClass.Transient)]
    [InlineData(503, FailureClass.Transient)]
    [InlineData(504, FailureClass.Transient)]
    [InlineData(529, FailureClass.Transient)]
    [InlineData(400, FailureClass.Final)]
    [InlineData(401, FailureClass.Final)]
    [InlineData(403, FailureClass.Final)]
    [InlineData(404, FailureClass.Final)]
    [InlineData(413, FailureClass.Final)]
    [InlineData(501, FailureClass.Final)]
    [InlineData(200, FailureClass.Success)]
    public void Classify_StatusBeforeFirstByte_MatchesTheRetryableSet(int status, FailureClass expected)
    {
        Assert.Equal(expected, RetryClassifier.Classify(AttemptResult.Status(status)));
    }

    [Theory]
    [InlineData(AttemptOutcomeKind.ConnectFailure, FailureClass.Transient)]
    [InlineData(AttemptOutcomeKind.ResetBeforeResponse, FailureClass.Transient)]
    [InlineData(AttemptOutcomeKind.BodyReset, FailureClass.Transient)]
    [InlineData(AttemptOutcomeKind.BodyIdleTimeout, FailureClass.Transient)]
    [InlineData(AttemptOutcomeKind.ResponseHeadersTimeout, FailureClass.Transient)]
    [InlineData(AttemptOutcomeKind.ClientAborted, FailureClass.Final)]
    public void Classify_TransportOutcomes_RetryOnlyWhatCannotHaveBeenBilledTwice(AttemptOutcomeKind kind, FailureClass expected)
    {
        Assert.Equal(expected, RetryClassifier.Classify(new AttemptResult(kind)));
    }

    [Theory]
    [InlineData(AttemptOutcomeKind.Response, 503)]
    [InlineData(AttemptOutcomeKind.Response, 429)]
    [InlineData(AttemptOutcomeKind.BodyReset, 200)]
    [InlineData(AttemptOutcomeKind.BodyIdleTimeout, 200)]
    public void Classify_AfterBytesReachedTheClient_IsNeverRetryable(AttemptOutcomeKind kind, int status)
    {
        var result = new AttemptResult(kind, status, ClientReceivedBytes: true);

        Assert.Equal(FailureClass.AfterFirstByte, RetryClassifier.Classify(result));
    }

    [Theory]
    [InlineData(AttemptOutcomeKind.Response, 503, true)]
    [InlineData(AttemptOutcomeKind.Response, 529, true)]
    [InlineData(AttemptOutcomeKind.Response, 429, false)]
    [InlineData(AttemptOutcomeKind.Response, 400, false)]
    [InlineData(AttemptOutcomeKind.Response, 200, false)]
    [InlineData(AttemptOutcomeKind.ConnectFailure, 0, true)]
    [InlineData(AttemptOutcomeKind.ResponseHeadersTimeout, 0, true)]
    [InlineData(AttemptOutcomeKind.ClientAborted, 0, false)]
    public void IsBreakerFailure_CountsServerSideFailuresOnly(AttemptOutcomeKind kind, int status, bool expected)
    {
        Assert.Equal(expected, RetryClassifier.IsBreakerFailure(new AttemptResult(kind, status)));
    }
}
