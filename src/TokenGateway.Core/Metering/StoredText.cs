namespace TokenGateway.Core.Metering;

/// <summary>
/// The bound on text that reaches storage or logs from a request: a client can put up to the body cap into a field
/// such as <c>model</c>, and without a bound that string would be copied into the journal, <c>usage_events</c> and
/// every rollup key (disk amplification). Values are cut to their first <see cref="MaxLength"/> UTF-16 characters.
/// </summary>
public static class StoredText
{
    /// <summary>Longest text stored per field (catalogue names, ids and codes are far shorter).</summary>
    public const int MaxLength = 128;

    /// <summary><paramref name="value"/> cut to <see cref="MaxLength"/> characters (never splitting a surrogate pair).</summary>
    public static string? Bound(string? value)
    {
        if (value is null || value.Length <= MaxLength)
        {
            return value;
        }

        var length = char.IsHighSurrogate(value[MaxLength - 1]) ? MaxLength - 1 : MaxLength;
        return value[..length];
    }

    /// <summary>
    /// <paramref name="usageEvent"/> with every text field within <see cref="MaxLength"/>; the same instance (no
    /// allocation) when it already is, which is the normal case.
    /// </summary>
    public static UsageEvent Bound(UsageEvent usageEvent)
    {
        ArgumentNullException.ThrowIfNull(usageEvent);
        if (WithinBounds(usageEvent))
        {
            return usageEvent;
        }

        var stages = usageEvent.Stages;
        if (stages is not null && stages.Any(s => s.Name.Length > MaxLength))
        {
            stages = [.. stages.Select(s => s with { Name = Bound(s.Name)! })];
        }

        return usageEvent with
        {
            RequestId = Bound(usageEvent.RequestId)!,
            TeamId = Bound(usageEvent.TeamId),
            KeyId = Bound(usageEvent.KeyId),
            Route = Bound(usageEvent.Route)!,
            Provider = Bound(usageEvent.Provider),
            Model = Bound(usageEvent.Model),
            Status = Bound(usageEvent.Status)!,
            ErrorCode = Bound(usageEvent.ErrorCode),
            ParentRequestId = Bound(usageEvent.ParentRequestId),
            Attempt = Bound(usageEvent.Attempt),
            Stages = stages ?? [],
        };
    }

    private static bool WithinBounds(UsageEvent e)
    {
        if (Long(e.RequestId) || Long(e.TeamId) || Long(e.KeyId) || Long(e.Route) || Long(e.Provider) || Long(e.Model)
            || Long(e.Status) || Long(e.ErrorCode) || Long(e.ParentRequestId) || Long(e.Attempt))
        {
            return false;
        }

        if (e.Stages is { } stages)
        {
            foreach (var stage in stages)
            {
                if (Long(stage.Name))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static bool Long(string? value) => value is { Length: > MaxLength };
}
