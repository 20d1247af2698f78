using System.Globalization;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Insights;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;

namespace TokenGateway.Insights;

/// <summary>
/// Builds a team's insights: its ledger volume over the window, the sampled observations and the ranked
/// recommendations (<c>GET /admin/teams/{id}/insights</c> and the dashboard's insights page).
/// </summary>
internal sealed class InsightsService(
    IUsageQueryService usage, IPolicyProvider policies, InsightsStore store, InsightsSampler sampler, ModelCatalog catalog,
    CostCalculator costs, IOptionsMonitor<InsightsOptions> options, TimeProvider time)
{
    public async Task<InsightsReport> GetAsync(string teamId, CancellationToken cancellationToken)
    {
        var settings = options.CurrentValue;
        var volume = await VolumeAsync(teamId, settings, cancellationToken);
        var policy = await policies.GetAsync(teamId, null, cancellationToken);
        IReadOnlyList<TokenAnatomyRollup>? anatomy;
        try
        {
            anatomy = await usage.GetTokenAnatomyAsync(teamId, volume.Volume.From, volume.Volume.To, cancellationToken);
        }
        catch (NotSupportedException)
        {
            anatomy = null; // a ledger without token anatomy: the tool-result share is unknown
        }

        var view = new InsightsPolicyView
        {
            Optimization = model => policy.Optimization.Resolve(model, string.Empty),
            AdaptiveMaxTokens = policy.AdaptiveMaxTokens is not null,
            MaxTokensCap = policy.MaxTokensCap,
            Models = model => catalog.TryResolve(model, out var card) ? card : null,
            Anatomy = anatomy,
            InputPrice = card => costs.TryGetEffectivePrices(card, out var prices) ? prices.Input : null,
        };
        var observations = store.Snapshot(teamId);
        var recommendations = InsightsEstimator.Estimate(observations, volume.Volume, view, settings.MinSamples);
        var stats = sampler.Stats;
        return new InsightsReport(
            teamId,
            time.GetUtcNow(),
            new InsightsWindow(volume.Volume.From, volume.Volume.To, Math.Round(volume.Volume.Days, 6), volume.Basis, settings.WindowDays),
            new InsightsVolume(volume.Volume.SpendUsd, volume.Volume.Requests, Math.Round(volume.Volume.MonthlySpendUsd, 6)),
            new InsightsSampling(stats.Rate, observations?.Samples ?? 0, stats.Evaluated, stats.Dropped, stats.Failed, stats.Queued,
                stats.CpuMicros, stats.CpuMicrosPerSample, stats.RecentMedianMicros, stats.ThreadCpuClock ? "thread" : "wall", Persisted: settings.PersistInterval > TimeSpan.Zero),
            recommendations,
            anatomy is not null);
    }

    /// <summary>
    /// The window: the last <see cref="InsightsOptions.WindowDays"/> days, or from the team's first hour with traffic
    /// when that is later (a new team's month is not scaled from days it did not exist), never shorter than
    /// <see cref="InsightsOptions.MinWindow"/>.
    /// </summary>
    private async Task<(LedgerVolume Volume, string Basis)> VolumeAsync(string teamId, InsightsOptions settings, CancellationToken ct)
    {
        var to = time.GetUtcNow();
        var from = to.AddDays(-settings.WindowDays);
        var hours = await usage.QueryAsync(new UsageQuery { TeamId = teamId, From = from, To = to, GroupBy = "hour" }, ct);
        var first = hours.Groups.Where(g => g.Totals.Requests > 0)
            .Select(g => DateTimeOffset.TryParse(g.Key, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at : (DateTimeOffset?)null)
            .Where(at => at is not null).Min();
        var basis = "full";
        if (first is { } start && start > from)
        {
            from = start;
            basis = "active";
        }

        if (to - from < settings.MinWindow)
        {
            from = to - settings.MinWindow;
            basis = "minimum";
        }

        var byModel = await usage.QueryAsync(new UsageQuery { TeamId = teamId, From = from, To = to, GroupBy = "model" }, ct);
        var models = byModel.Groups.ToDictionary(g => g.Key, g => new ModelVolume(g.Totals.CostUsd, g.Totals.Requests), StringComparer.Ordinal);
        return (new LedgerVolume(from, to, models), basis);
    }
}

/// <summary>The insights response.</summary>
internal sealed record InsightsReport(
    string TeamId, DateTimeOffset GeneratedAt, InsightsWindow Window, InsightsVolume Volume, InsightsSampling Sampling,
    IReadOnlyList<InsightRecommendation> Recommendations, bool AnatomyAvailable);

/// <summary>The ledger window the monthly figures scale from (<c>basis</c>: full, active or minimum).</summary>
internal sealed record InsightsWindow(DateTimeOffset From, DateTimeOffset To, double Days, string Basis, int WindowDays);

/// <summary>The team's ledger spend and requests in the window, and that spend scaled to 30 days.</summary>
internal sealed record InsightsVolume(decimal SpendUsd, long Requests, decimal UsdPerMonth);

/// <summary>Sampling counters: this team's samples, and the process-wide evaluated/dropped/failed samples and shadow CPU.</summary>
internal sealed record InsightsSampling(
    double Rate, long TeamSamples, long Evaluated, long Dropped, long Failed, int Queued, long ShadowCpuMicrosTotal,
    double? ShadowCpuMicrosPerSample, long? ShadowCpuMicrosRecentMedian, string CpuClock, bool Persisted);
