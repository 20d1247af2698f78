using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.ScaleOut;

/// <summary>
/// What a replica's usage API says the ledger holds for a team (every event, from <c>/admin/usage/export</c>), and
/// what its budget endpoint says was spent: the two must agree once every reservation is settled or expired.
/// </summary>
internal static class PairLedger
{
    /// <summary>Every ledger event of the team: request id and cost.</summary>
    public static async Task<IReadOnlyList<(string RequestId, decimal CostUsd)>> EventsAsync(GatewayProcess replica, string teamId)
    {
        var csv = await replica.Admin.GetStringAsync($"/admin/usage/export?teamId={Uri.EscapeDataString(teamId)}");
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var header = lines[0].Split(',');
        var id = Array.IndexOf(header, "request_id");
        var cost = Array.IndexOf(header, "cost_usd");
        return lines.Skip(1)
            .Select(line => line.Split(','))
            .Select(fields => (fields[id], decimal.Parse(fields[cost], CultureInfo.InvariantCulture)))
            .ToList();
    }

    /// <summary>
    /// The ledger's spend as the budget counters count it: each event's cost in whole micro-dollars (rounded half
    /// away from zero, as settlement does), summed.
    /// </summary>
    public static decimal CounterSpend(IEnumerable<(string RequestId, decimal CostUsd)> events) =>
        events.Sum(e => decimal.Round(e.CostUsd * 1_000_000m, 0, MidpointRounding.AwayFromZero)) / 1_000_000m;

    /// <summary>The budget endpoint's snapshot once nothing is reserved any more (or the timeout passed).</summary>
    public static async Task<JsonElement> SettledBudgetAsync(GatewayProcess replica, string teamId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var snapshot = await replica.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
            if (snapshot.GetProperty("reservedUsd").GetDecimal() == 0m || DateTime.UtcNow > deadline)
            {
                return snapshot;
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Usage totals of the team once the ledger holds at least <paramref name="count"/> requests (or the timeout passed).</summary>
    public static async Task<JsonElement> TotalsAsync(GatewayProcess replica, string teamId, long count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var totals = (await replica.Admin.GetFromJsonAsync<JsonElement>($"/admin/usage?teamId={teamId}")).GetProperty("totals");
            if (totals.GetProperty("requests").GetInt64() >= count || DateTime.UtcNow > deadline)
            {
                return totals;
            }

            await Task.Delay(100);
        }
    }
}
