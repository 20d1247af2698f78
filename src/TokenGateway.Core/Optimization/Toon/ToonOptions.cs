namespace TokenGateway.Core.Optimization.Toon;

/// <summary>TOON encoder options (spec v4.0 §13): indentation width and the document delimiter.</summary>
internal sealed record ToonEncoderOptions
{
    public static readonly ToonEncoderOptions Default = new();

    public int IndentSize { get; init; } = 2;

    /// <summary>One of <c>,</c> (default), <c>\t</c> or <c>|</c>.</summary>
    public char Delimiter { get; init; } = ',';
}

/// <summary>TOON decoder options (spec v4.0 §13): indentation width and strict validation.</summary>
internal sealed record ToonDecoderOptions
{
    public static readonly ToonDecoderOptions Default = new();

    public int IndentSize { get; init; } = 2;

    public bool Strict { get; init; } = true;
}

/// <summary>Raised when a TOON document is malformed (strict-mode violations included).</summary>
internal sealed class ToonFormatException(string message, int line) : FormatException($"TOON line {line}: {message}")
{
    public int Line { get; } = line;
}
