using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace TokenGateway.Caching;

/// <summary>
/// Storage of the per-team response cache (section <c>ResponseCache</c>); whether a team caches, and for how long, is
/// its policy's <c>cache</c> section. The second level is Redis when <c>ConnectionStrings:Redis</c> is set.
/// </summary>
public sealed class ResponseCacheOptions
{
    public const string SectionName = "ResponseCache";

    /// <summary>Bytes of stored answers the in-process first level may hold (least recently used entries are compacted away).</summary>
    [Range(1024 * 1024, long.MaxValue)]
    public long MemoryLimitBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Largest serialized entry accepted by the cache library (HybridCache <c>MaximumPayloadBytes</c>); a team's <c>maxEntryBytes</c> is capped by it.</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaximumPayloadBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>Prefix of the Redis keys (the second level), so several gateways or tests can share one Redis.</summary>
    [Required]
    public string RedisInstanceName { get; set; } = "tokengateway:response-cache:";
}

[OptionsValidator]
internal sealed partial class ResponseCacheOptionsValidator : IValidateOptions<ResponseCacheOptions>;
