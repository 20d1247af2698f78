using System.ComponentModel.DataAnnotations;

namespace TokenGateway.Core.Metering;

/// <summary>What to do with a model whose card has no input or output price.</summary>
public enum UnpricedModelPolicy
{
    /// <summary>Refuse requests for the model (<c>model_not_priced</c>); the default.</summary>
    Refuse,
    /// <summary>Serve them and charge the configured ceiling prices for the missing prices.</summary>
    Ceiling,
}

/// <summary>Configuration section <c>Pricing</c>: how unpriced models are treated. A model is never silently free.</summary>
public sealed class PricingOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Pricing";

    /// <summary>Refuse (default) or charge the ceiling.</summary>
    public UnpricedModelPolicy UnpricedModelPolicy { get; set; } = UnpricedModelPolicy.Refuse;

    /// <summary>Input price per million tokens charged under <see cref="UnpricedModelPolicy.Ceiling"/>.</summary>
    [Range(typeof(decimal), "0.000001", "1000000")]
    public decimal CeilingInputPerMillion { get; set; } = 15m;

    /// <summary>Output price per million tokens charged under <see cref="UnpricedModelPolicy.Ceiling"/>.</summary>
    [Range(typeof(decimal), "0.000001", "1000000")]
    public decimal CeilingOutputPerMillion { get; set; } = 75m;
}
