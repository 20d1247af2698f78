using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace TokenGateway.Insights;

/// <summary>Per-team recommendations (section <c>Insights</c>; docs/insights.md).</summary>
public sealed class InsightsOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Insights";

    /// <summary>
    /// Share of answered requests evaluated in the shadow (after they were answered, off the request path);
    /// 0 turns sampling off.
    /// </summary>
    [Range(0.0, 1.0)]
    public double ShadowSampleRate { get; set; } = 0.05;

    /// <summary>Sampled requests waiting for the shadow worker; when it is full, new samples are dropped (counted).</summary>
    [Range(1, 100_000)]
    public int QueueCapacity { get; set; } = 64;

    /// <summary>Teams whose observations are kept in memory (later teams are not sampled).</summary>
    [Range(1, 1_000_000)]
    public int MaxTeams { get; set; } = 10_000;

    /// <summary>The ledger window the monthly figures scale from (at most this many days back).</summary>
    [Range(1, 366)]
    public int WindowDays { get; set; } = 7;

    /// <summary>The shortest window scaled to a month (a team active for minutes is not extrapolated from seconds).</summary>
    [Range(typeof(TimeSpan), "00:01:00", "30.00:00:00")]
    public TimeSpan MinWindow { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// How often the sampled aggregates are written to <c>{Storage:DataDirectory}/insights-observations.json</c> (also on
    /// shutdown; loaded at start). Zero turns persistence off.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan PersistInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Sampled requests needed before anything is recommended (per model for the output cap).</summary>
    [Range(1, 1_000_000)]
    public int MinSamples { get; set; } = 20;
}

/// <summary>Source-generated checks of <see cref="InsightsOptions"/>' data annotations.</summary>
[OptionsValidator]
internal sealed partial class InsightsOptionsValidator : IValidateOptions<InsightsOptions>;
