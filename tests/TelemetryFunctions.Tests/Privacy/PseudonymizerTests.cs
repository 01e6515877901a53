using TelemetryFunctions.Privacy;

namespace TelemetryFunctions.Tests.Privacy;

public sealed class PseudonymizerTests
{
    private const string Key = "a-test-pseudonymization-key-of-enough-length";

    [Fact]
    public void Same_identifier_and_key_give_the_same_pseudonym()
    {
        var a = new Pseudonymizer(Key).Pseudonymize(IdentifierKind.User, "user-1");
        var b = new Pseudonymizer(Key).Pseudonymize(IdentifierKind.User, "user-1");

        Assert.Equal(a, b);
    }

    [Fact]
    public void Different_keys_give_unrelated_pseudonyms()
    {
        var a = new Pseudonymizer(Key).Pseudonymize(IdentifierKind.User, "user-1");
        var b = new Pseudonymizer(Key + "x").Pseudonymize(IdentifierKind.User, "user-1");

        Assert.NotEqual(a, b);
    }

    [Fact]
    public void A_user_id_and_an_instance_id_with_the_same_text_do_not_collide()
    {
        var pseudonymizer = new Pseudonymizer(Key);

        Assert.NotEqual(
            pseudonymizer.Pseudonymize(IdentifierKind.User, "abc"),
            pseudonymizer.Pseudonymize(IdentifierKind.Instance, "abc"));
    }

    [Theory]
    [InlineData("a/b\\c#d?e")]
    [InlineData("tab\there")]
    [InlineData("nul\0")]
    [InlineData("😀 emoji")]
    [InlineData("")]
    public void Pseudonyms_are_32_lowercase_hex_characters_whatever_the_input(string raw)
    {
        var pseudonym = new Pseudonymizer(Key).Pseudonymize(IdentifierKind.Instance, raw + new string('x', 2000));

        Assert.Matches("^[0-9a-f]{32}$", pseudonym);
        Assert.DoesNotContain(raw.Length > 0 ? raw : "x", pseudonym, StringComparison.Ordinal);
    }

    [Fact]
    public void The_preview_pseudonym_of_an_identifier_differs_from_its_stored_one_and_has_its_form()
    {
        var stored = new Pseudonymizer(Key);
        var preview = stored.ForPreview();

        foreach (var kind in Enum.GetValues<IdentifierKind>())
        {
            var shown = preview.Pseudonymize(kind, "user-1");
            Assert.NotEqual(stored.Pseudonymize(kind, "user-1"), shown);
            Assert.Matches("^[0-9a-f]{32}$", shown);
            Assert.Equal(shown, new Pseudonymizer(Key).ForPreview().Pseudonymize(kind, "user-1"));
        }
    }

    [Fact]
    public void The_preview_key_derived_from_a_key_is_the_one_its_preview_pseudonymizer_uses()
    {
        var previewKey = Pseudonymizer.PreviewKeyOf(Key);

        Assert.Matches("^[0-9a-f]{64}$", previewKey);
        Assert.NotEqual(Pseudonymizer.PreviewKeyOf(Key + "x"), previewKey);
        Assert.Equal(
            new Pseudonymizer(previewKey).Pseudonymize(IdentifierKind.Instance, "inst-1"),
            new Pseudonymizer(Key).ForPreview().Pseudonymize(IdentifierKind.Instance, "inst-1"));
    }
}
