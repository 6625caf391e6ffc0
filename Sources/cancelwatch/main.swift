print("cancelwatch")
