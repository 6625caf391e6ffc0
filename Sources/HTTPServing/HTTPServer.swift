public enum HTTPServingPlaceholder {}
