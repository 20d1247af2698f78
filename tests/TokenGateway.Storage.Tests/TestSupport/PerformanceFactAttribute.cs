namespace TokenGateway.Storage.Tests.TestSupport;

/// <summary>
/// A long-running measurement: skipped unless <c>TOKENGATEWAY_PERF=1</c>, so the default test run stays fast.
/// Run with <c>TOKENGATEWAY_PERF=1 dotnet test -c Release --filter Category=Performance</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class PerformanceFactAttribute : FactAttribute
{
    public PerformanceFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("TOKENGATEWAY_PERF") != "1")
        {
            Skip = "Performance measurement; set TOKENGATEWAY_PERF=1 to run.";
        }

        Timeout = 0;
    }
}
