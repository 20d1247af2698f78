namespace TokenGateway.Caching;

/// <summary>
/// The clock entry lifetimes are measured with (the host's <see cref="TimeProvider"/> by default); its own type so a
/// test can move the cache's time alone (<c>FakeTimeProvider</c>) without moving the gateway's deadlines and timers.
/// </summary>
internal sealed class ResponseCacheClock(TimeProvider time)
{
    public TimeProvider Time { get; } = time;
}
