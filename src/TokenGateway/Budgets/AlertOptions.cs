namespace TokenGateway.Budgets;

/// <summary>Where soft-budget alerts are delivered (section <c>Alerts</c>).</summary>
public sealed class AlertOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Alerts";

    /// <summary>URL that receives a JSON POST per alert; alerts are only logged when unset.</summary>
    public Uri? WebhookUrl { get; set; }

    /// <summary>Timeout of one delivery attempt.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Delivery attempts per alert (first try included).</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Alerts waiting for delivery before new ones are dropped (and logged as dropped).</summary>
    public int QueueCapacity { get; set; } = 1000;
}
