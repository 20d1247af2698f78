using System.Globalization;

namespace TokenGateway.IntegrationTests.Resilience;

/// <summary>What the resilience suites share: fast retry settings and a fresh simulator fault scenario id.</summary>
internal static class ResilienceTestSettings
{
    /// <summary>The simulator's fault header (forwarded by the gateway fixture's provider allowlist).</summary>
    public const string Fault = "x-simulator-fault";

    /// <summary>Retries with short back-off so a test with several attempts takes well under a second.</summary>
    public static Dictionary<string, string?> Retries(int maxAttempts = 3) => new()
    {
        ["Resilience:Retry:MaxAttempts"] = maxAttempts.ToString(CultureInfo.InvariantCulture),
        ["Resilience:Retry:BaseDelay"] = "00:00:00.05",
        ["Resilience:Retry:MaxDelay"] = "00:00:00.2",
    };

    /// <summary>A scenario id of its own, so the simulator's <c>first=N</c> counts only this test's requests.</summary>
    public static string Scenario() => "s" + Guid.NewGuid().ToString("N");
}
