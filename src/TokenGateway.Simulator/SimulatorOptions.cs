using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace TokenGateway.Simulator;

/// <summary>Configuration of the simulated provider (section <c>Simulator</c>, then the <c>AddLlmSimulator</c> callback).</summary>
public sealed class SimulatorOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Simulator";

    /// <summary>When set, every request must present this key as <c>Authorization: Bearer</c>, <c>x-api-key</c> or <c>api-key</c>.</summary>
    public string? RequiredApiKey { get; set; }

    /// <summary>Visible output tokens of an answer when no <c>output-tokens=N</c> fault is given (a typical short answer).</summary>
    [Range(1, 1_000_000)]
    public int DefaultOutputTokens { get; set; } = 24;

    /// <summary>How many of the most recent requests <see cref="SimulatorRecorder"/> keeps; 0 disables recording.</summary>
    [Range(0, 1_000_000)]
    public int RecordLimit { get; set; } = 256;

    /// <summary>Simulate provider prompt caching (OpenAI automatic prefix caching, Anthropic <c>cache_control</c>).</summary>
    public bool PromptCaching { get; set; } = true;

    /// <summary>Maximum number of cached prefix entries across all models (oldest evicted first).</summary>
    [Range(1, 10_000_000)]
    public int PromptCacheCapacity { get; set; } = 65_536;

    /// <summary>How long an unused cached prefix stays warm (Anthropic's default TTL; a hit refreshes it).</summary>
    public TimeSpan PromptCacheTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Largest request body accepted; larger bodies get 413 in the dialect's envelope.</summary>
    [Range(1, int.MaxValue)]
    public int MaxRequestBodyBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>Reasoning tokens reported per request by reasoning models (o-series, gpt-5) at <c>reasoning_effort: medium</c>.</summary>
    [Range(0, 1_000_000)]
    public int ReasoningTokens { get; set; } = 64;

    /// <summary>Send the providers' rate-limit headers (remaining requests and tokens per key and minute) on every answer.</summary>
    public bool RateLimitHeaders { get; set; } = true;

    /// <summary>Requests per minute per key announced in the rate-limit headers.</summary>
    [Range(1, long.MaxValue)]
    public long RateLimitRequestsPerMinute { get; set; } = 10_000;

    /// <summary>Tokens per minute per key announced in the rate-limit headers.</summary>
    [Range(1, long.MaxValue)]
    public long RateLimitTokensPerMinute { get; set; } = 30_000_000;
}

/// <summary>Validates <see cref="SimulatorOptions"/> data annotations (source-generated).</summary>
[OptionsValidator]
internal sealed partial class SimulatorOptionsValidator : IValidateOptions<SimulatorOptions>;
